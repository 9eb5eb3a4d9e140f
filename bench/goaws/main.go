// Command goaws serves an SQS-compatible API (goaws, through
// internal/testsqs) for `make bench`, so the SQS backend can be measured on
// a machine without AWS. It is a test server: single process, memory only,
// Query protocol only, and its costs are goaws's (every receive and delete
// scans the queue), not SQS's.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/openhqm/openhqm/internal/testsqs"
)

func main() {
	port := flag.Int("port", 19324, "listen port on 127.0.0.1")
	queue := flag.String("queue", "openhqm-bench", "queue to create, with its -dlq companion")
	visibility := flag.Duration("visibility", 30*time.Second, "visibility timeout of the queues: goaws applies it instead of the lease a receive asks for")
	flag.Parse()
	s, err := testsqs.StartMain(testsqs.WithAddr(fmt.Sprintf("127.0.0.1:%d", *port)), testsqs.WithoutReceiveCounts())
	if err != nil {
		log.Fatal(err)
	}
	defer s.Stop()
	for _, name := range []string{*queue + "-dlq", *queue} {
		if _, err := s.CreateQueue(context.Background(), name, *visibility); err != nil {
			s.Stop()
			log.Fatal(err)
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
