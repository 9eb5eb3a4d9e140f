// Command kfake runs an in-process Kafka-protocol broker (franz-go's kfake)
// for `make bench`, so the Kafka backend can be measured on a machine
// without Kafka. It is a test broker: single process, memory only.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 19092, "listen port on 127.0.0.1")
	topics := flag.String("topics", "openhqm-bench", "topic to create, with -retry and -dlq companions")
	partitions := flag.Int("partitions", 3, "partitions per topic")
	flag.Parse()
	c, err := kfake.NewCluster(
		kfake.Ports(*port),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, fmt.Sprintf("127.0.0.1:%d", *port))
		}),
		kfake.SeedTopics(int32(*partitions), *topics, *topics+"-retry", *topics+"-dlq"),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
