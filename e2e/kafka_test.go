package e2e

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/openhqm/openhqm/internal/testredis"
)

// startKafka runs a Kafka-protocol broker in the test process on a free
// 127.0.0.1 port with the job, retry and dead-letter topics.
func startKafka(t *testing.T, topic string) string {
	t.Helper()
	addr := freeAddr(t)
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	c, err := kfake.NewCluster(
		kfake.Ports(port),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, addr) }),
		kfake.SeedTopics(3, topic, topic+"-retry", topic+"-dlq"),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return addr
}

func kafkaConfig(listen, appURL, broker, topic, redisURL string) string {
	return fmt.Sprintf(`
server {
  listen = %q
}

endpoint "app" {
  url     = %q
  timeout = "2s"
}

queue "jobs" {
  backend = "kafka"
  kafka {
    brokers = [%q]
    topic   = %q
    group   = "e2e-workers"
  }
  lease = "5s"
}

results {
  backend = "redis"
  redis {
    url = %q
  }
}

route "work" {
  match {
    path_prefix = "/work"
  }
  mode       = "async"
  endpoint   = "app"
  queue      = "jobs"
  idempotent = true
  retry {
    attempts = 10
    initial  = "100ms"
    max      = "1s"
  }
}

worker {
  embedded    = false
  concurrency = 16
  drain       = "5s"
}

telemetry {
  log_level = "warn"
}
`, listen, appURL, broker, topic, redisURL)
}

// TestKafkaSIGKILLWorkerLosesNothing is the SIGKILL test with the Kafka
// backend: 2,000 async requests, two workers, one killed while it holds
// jobs; the group hands its partitions to the other and every request
// completes with the app's answer.
func TestKafkaSIGKILLWorkerLosesNothing(t *testing.T) {
	rs := testredis.Start(t)
	broker := startKafka(t, "e2e-jobs")
	a := startApp(t, 5*time.Millisecond)
	listen := freeAddr(t)
	dir := writeConfig(t, kafkaConfig(listen, a.URL, broker, "e2e-jobs", rs.URL()))
	base := "http://" + listen

	serve := start(t, "serve", nil, "serve", "-c", dir)
	w1addr, w2addr := freeAddr(t), freeAddr(t)
	w1 := start(t, "worker-1", nil, "worker", "-c", dir, "--listen", w1addr, "worker-1")
	w2 := start(t, "worker-2", nil, "worker", "-c", dir, "--listen", w2addr, "worker-2")
	waitOK(t, serve, base+"/-/readyz")
	waitOK(t, w1, "http://"+w1addr+"/-/readyz")
	waitOK(t, w2, "http://"+w2addr+"/-/readyz")

	killDuringLoad(t, base, a, w1, 2000, "/work/k", 90*time.Second)
	if code := w2.stop(t, 20*time.Second); code != 0 {
		t.Errorf("worker-2 exited %d after SIGTERM, want 0", code)
	}
	if code := serve.stop(t, 15*time.Second); code != 0 {
		t.Errorf("serve exited %d after SIGTERM, want 0", code)
	}
}
