package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/openhqm/openhqm/backends"
)

const (
	testTopic = "jobs"
	testGroup = "workers"
)

// startCluster starts an in-process Kafka (kfake) on a free port with the
// queue's topics seeded with partitions partitions each.
func startCluster(t testing.TB, partitions int32) []string {
	t.Helper()
	c, err := kfake.NewCluster(
		kfake.Ports(0),
		kfake.SeedTopics(partitions, testTopic, testTopic+"-retry", testTopic+"-dlq"),
		kfake.GroupMinSessionTimeout(100*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// fastGroup tunes sarama for quick rebalances against the in-process broker.
// The session timeout stays long: members leave the group on Close, so no
// test waits for it, and a loaded CI machine can starve a member's heartbeats
// for over a second. A member the broker expires has its later commits
// refused and its partition delivered again (at-least-once, but not what the
// hand-over tests expect).
func fastGroup(c *sarama.Config) {
	c.Consumer.Group.Session.Timeout = 10 * time.Second
	c.Consumer.Group.Heartbeat.Interval = 100 * time.Millisecond
	c.Consumer.Group.Rebalance.Retry.Backoff = 100 * time.Millisecond
	c.Consumer.MaxWaitTime = 100 * time.Millisecond
	c.Consumer.Retry.Backoff = 100 * time.Millisecond
	c.Metadata.Retry.Backoff = 50 * time.Millisecond
}

func testOptions(brokers []string) Options {
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return Options{
		Name:           "jobs",
		Brokers:        brokers,
		Topic:          testTopic,
		Group:          testGroup,
		Lease:          5 * time.Second,
		CommitInterval: 50 * time.Millisecond,
		RevokeTimeout:  2 * time.Second,
		Logger:         log,
		Tune:           fastGroup,
	}
}

func newQueue(t testing.TB, opts Options) *Queue {
	t.Helper()
	q, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func newJob(key string, body string) *backends.Job {
	b := make([]byte, 16)
	rand.Read(b)
	return &backends.Job{
		ID:        hex.EncodeToString(b),
		Route:     "orders",
		Endpoint:  "legacy",
		Queue:     "jobs",
		Method:    "POST",
		Path:      "/api/orders",
		Query:     "a=1",
		Headers:   []backends.Header{{Name: "Content-Type", Value: "application/json"}},
		Body:      []byte(body),
		Key:       key,
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
}

func enqueue(t testing.TB, q *Queue, jobs ...*backends.Job) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, j := range jobs {
		if err := q.Enqueue(ctx, j); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}
}

// receiveN receives until n deliveries arrived or the deadline passes.
func receiveN(t testing.TB, q *Queue, consumer string, n int, within time.Duration) []*backends.Delivery {
	t.Helper()
	var out []*backends.Delivery
	deadline := time.Now().Add(within)
	for len(out) < n && time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		ds, err := q.Receive(ctx, consumer, n-len(out))
		cancel()
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		out = append(out, ds...)
	}
	if len(out) < n {
		t.Fatalf("received %d of %d deliveries within %v", len(out), n, within)
	}
	return out
}

// committed returns the group's committed offset and metadata of one
// partition (-1 when nothing was committed), read with a separate client.
// It must be called from the test's goroutine; others use fetchCommitted.
func committed(t testing.TB, brokers []string, topic string, partition int32) (int64, string) {
	t.Helper()
	off, meta, err := fetchCommitted(brokers, topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	return off, meta
}

// fetchCommitted is committed for any goroutine. A group that does not exist
// yet (no member joined) has nothing committed.
func fetchCommitted(brokers []string, topic string, partition int32) (int64, string, error) {
	admin, err := sarama.NewClusterAdmin(brokers, sarama.NewConfig())
	if err != nil {
		return 0, "", fmt.Errorf("admin: %w", err)
	}
	defer admin.Close()
	resp, err := admin.ListConsumerGroupOffsets(testGroup, map[string][]int32{topic: {partition}})
	if errors.Is(err, sarama.ErrGroupIDNotFound) {
		return -1, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("ListConsumerGroupOffsets: %w", err)
	}
	b := resp.GetBlock(topic, partition)
	if b == nil {
		return -1, "", nil
	}
	return b.Offset, b.Metadata, nil
}

// eventually polls cond until it holds or within passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not reached within %v (last: %s)", what, within, last)
}

func ack(t testing.TB, q *Queue, d *backends.Delivery) {
	t.Helper()
	if err := q.Ack(context.Background(), d); err != nil {
		t.Fatalf("Ack %s: %v", d.Receipt, err)
	}
}

func TestOptionsInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Options)
	}{
		{"no brokers", func(o *Options) { o.Brokers = nil }},
		{"bad version", func(o *Options) { o.Version = "x.y" }},
		{"old version", func(o *Options) { o.Version = "0.10.2.0" }},
		{"bad sasl", func(o *Options) { o.SASLMechanism = "GSSAPI" }},
		{"same topics", func(o *Options) { o.RetryTopic = o.Topic }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions([]string{"127.0.0.1:1"})
			tc.mod(&o)
			_, err := New(o)
			if !errors.Is(err, errOptions) {
				t.Fatalf("got %v, want invalid options", err)
			}
		})
	}
}

func fmtOffsets(off int64, meta string) string { return fmt.Sprintf("offset %d meta %q", off, meta) }
