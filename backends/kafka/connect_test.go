package kafka

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/openhqm/openhqm/backends"
)

// freePort returns a port that nothing listens on (as far as the kernel
// knows when it returns).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// syncBuffer is a log sink that tests may read while the queue writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A broker that is down when the queue starts does not fail New: the queue
// answers unavailable until the broker comes up, then connects by itself and
// works, having logged the outage once.
func TestConnectsWhenTheBrokerComesUp(t *testing.T) {
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	opts := testOptions([]string{addr})
	var logs syncBuffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	q := newQueue(t, opts)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := q.Enqueue(ctx, newJob("", "early")); !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("Enqueue before the broker is up: %v, want ErrUnavailable", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Enqueue waited for its context instead of answering")
	}
	if _, err := q.Stats(ctx); !errors.Is(err, backends.ErrUnavailable) {
		t.Fatalf("Stats before the broker is up: %v, want ErrUnavailable", err)
	}
	if ds, err := q.Receive(ctx, "w", 1); err != nil || len(ds) != 0 {
		t.Fatalf("Receive before the broker is up: %v, %v; want nothing", ds, err)
	}

	c, err := kfake.NewCluster(
		kfake.Ports(port),
		kfake.SeedTopics(1, testTopic, testTopic+"-retry", testTopic+"-dlq"),
		kfake.GroupMinSessionTimeout(100*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("start kfake on %s: %v", addr, err)
	}
	t.Cleanup(c.Close)

	eventually(t, 30*time.Second, "Stats answers once the broker is up", func() (bool, string) {
		_, err := q.Stats(ctx)
		return err == nil, errString(err)
	})
	job := newJob("", "late")
	enqueue(t, q, job)
	d := receiveN(t, q, "w", 1, 10*time.Second)[0]
	if d.Job.ID != job.ID {
		t.Errorf("received job %s, want %s", d.Job.ID, job.ID)
	}
	ack(t, q, d)

	out := logs.String()
	if n := strings.Count(out, "cannot connect"); n != 1 {
		t.Errorf("logged the outage %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "kafka: connected") {
		t.Errorf("did not log the connection:\n%s", out)
	}
}

// Close ends a connection attempt that is stuck on a broker that accepts
// connections and never answers, long before sarama's own timeouts would,
// and an Enqueue meanwhile returns with its context.
func TestCloseStopsConnecting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	defer func() {
		l.Close()
		for c := range accepted {
			c.Close()
		}
	}()

	opts := testOptions([]string{l.Addr().String()})
	opts.Tune = func(c *sarama.Config) {
		c.Net.DialTimeout = 10 * time.Minute
		c.Net.ReadTimeout = 10 * time.Minute
		c.Net.WriteTimeout = 10 * time.Minute
	}
	q, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-accepted:
		accepted <- c
	case <-time.After(30 * time.Second):
		t.Fatal("the queue did not dial the broker")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := q.Enqueue(ctx, newJob("", "x")); !errors.Is(err, backends.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Enqueue while connecting: %v, want ErrUnavailable and its context's error", err)
	}

	closed := make(chan error, 1)
	go func() { closed <- q.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(60 * time.Second): // sarama alone would wait its 10-minute read timeout
		t.Fatal("Close did not stop the connection attempt")
	}
	if err := q.Enqueue(context.Background(), newJob("", "x")); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Enqueue after Close: %v, want ErrClosed", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
