package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/go-cmp/cmp"

	"github.com/openhqm/openhqm/backends"
)

// TestOrderPerKeyAndCommit: jobs of one key arrive in enqueue order, the job
// is returned intact, and acking everything commits every partition to its
// high watermark.
func TestOrderPerKeyAndCommit(t *testing.T) {
	brokers := startCluster(t, 3)
	q := newQueue(t, testOptions(brokers))
	keys := []string{"a", "b", "c", "d"}
	var want []*backends.Job
	for i := range 40 {
		j := newJob(keys[i%len(keys)], fmt.Sprintf("body-%d", i))
		want = append(want, j)
	}
	enqueue(t, q, want...)

	ds := receiveN(t, q, "w1", len(want), 20*time.Second)
	got := map[string][]string{}
	byID := map[string]*backends.Job{}
	for _, d := range ds {
		got[d.Job.Key] = append(got[d.Job.Key], string(d.Job.Body))
		byID[d.Job.ID] = d.Job
		if d.Attempt != 1 {
			t.Errorf("job %s: attempt %d, want 1", d.Job.ID, d.Attempt)
		}
		ack(t, q, d)
	}
	wantOrder := map[string][]string{}
	for _, j := range want {
		wantOrder[j.Key] = append(wantOrder[j.Key], string(j.Body))
		if diff := cmp.Diff(j, byID[j.ID]); diff != "" {
			t.Errorf("job %s changed in transit (-sent +received):\n%s", j.ID, diff)
		}
	}
	if diff := cmp.Diff(wantOrder, got); diff != "" {
		t.Errorf("per-key order (-enqueued +received):\n%s", diff)
	}

	// Every partition commits up to its end.
	admin, err := sarama.NewClusterAdmin(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	client, err := sarama.NewClient(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for p := range int32(3) {
		hwm, err := client.GetOffset(testTopic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, fmt.Sprintf("partition %d committed to %d", p, hwm), func() (bool, string) {
			off, meta := committed(t, brokers, testTopic, p)
			return off == hwm || (hwm == 0 && off == -1), fmtOffsets(off, meta)
		})
	}
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(backends.Stats{}, st); diff != "" {
		t.Errorf("stats after everything was acked (-want +got):\n%s", diff)
	}
}

// TestLeaseExpiry: a delivery held past its lease is delivered again with
// the next attempt number; the old receipt answers ErrLeaseLost; Extend
// keeps a delivery.
func TestLeaseExpiry(t *testing.T) {
	brokers := startCluster(t, 1)
	opts := testOptions(brokers)
	opts.Lease = 300 * time.Millisecond
	q := newQueue(t, opts)
	enqueue(t, q, newJob("k", "slow"), newJob("k", "extended"))
	ds := receiveN(t, q, "w1", 2, 10*time.Second)
	slow, extended := ds[0], ds[1]

	ctx := context.Background()
	stop := time.Now().Add(900 * time.Millisecond)
	for time.Now().Before(stop) {
		if err := q.Extend(ctx, extended, 300*time.Millisecond); err != nil {
			t.Fatalf("Extend: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	again := receiveN(t, q, "w2", 1, 5*time.Second)[0]
	if again.Job.ID != slow.Job.ID || again.Attempt != 2 {
		t.Fatalf("redelivered %s attempt %d, want %s attempt 2", again.Job.ID, again.Attempt, slow.Job.ID)
	}
	if err := q.Ack(ctx, slow); !errors.Is(err, backends.ErrLeaseLost) {
		t.Fatalf("Ack of an expired delivery: got %v, want ErrLeaseLost", err)
	}
	ack(t, q, extended)
	ack(t, q, again)
	eventually(t, 5*time.Second, "committed to 2", func() (bool, string) {
		off, meta := committed(t, brokers, testTopic, 0)
		return off == 2, fmtOffsets(off, meta)
	})
}

// TestNackDelay: a nacked job comes back through the retry topic with the
// next attempt number, not before its due time, while new jobs on the main
// topic keep flowing.
func TestNackDelay(t *testing.T) {
	brokers := startCluster(t, 1)
	q := newQueue(t, testOptions(brokers))
	ctx := context.Background()
	first := newJob("k", "retried")
	enqueue(t, q, first)
	d := receiveN(t, q, "w1", 1, 10*time.Second)[0]
	const delay = 1500 * time.Millisecond
	nackedAt := time.Now()
	if err := q.Nack(ctx, d, delay); err != nil {
		t.Fatalf("Nack: %v", err)
	}
	if err := q.Ack(ctx, d); !errors.Is(err, backends.ErrLeaseLost) {
		t.Fatalf("Ack after Nack: got %v, want ErrLeaseLost", err)
	}
	st, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Delayed != 1 {
		t.Errorf("Stats.Delayed = %d, want 1 (%+v)", st.Delayed, st)
	}

	second := newJob("k", "fresh")
	enqueue(t, q, second)
	next := receiveN(t, q, "w1", 1, 10*time.Second)[0]
	if next.Job.ID != second.ID {
		t.Fatalf("got %s (attempt %d) first, want the fresh job while the retry is delayed", next.Job.Body, next.Attempt)
	}
	ack(t, q, next)

	retried := receiveN(t, q, "w1", 1, 10*time.Second)[0]
	if retried.Job.ID != first.ID || retried.Attempt != 2 {
		t.Fatalf("got %s attempt %d, want %s attempt 2", retried.Job.ID, retried.Attempt, first.ID)
	}
	// A lower bound, not a speed assertion: the job must not return early.
	if early := time.Until(nackedAt.Add(delay)); early > 10*time.Millisecond {
		t.Errorf("retry delivered %v before its due time", early)
	}
	ack(t, q, retried)
	eventually(t, 5*time.Second, "retry topic committed", func() (bool, string) {
		off, meta := committed(t, brokers, testTopic+"-retry", 0)
		return off == 1, fmtOffsets(off, meta)
	})
}

// TestDeadLetter: the dead-letter topic receives the job with its reason,
// attempts and last answer, and the original is finished.
func TestDeadLetter(t *testing.T) {
	brokers := startCluster(t, 1)
	q := newQueue(t, testOptions(brokers))
	ctx := context.Background()
	job := newJob("k", "doomed")
	enqueue(t, q, job)
	d := receiveN(t, q, "w1", 1, 10*time.Second)[0]
	at := time.Now().UTC().Truncate(time.Millisecond)
	dl := backends.DeadLetter{Reason: "upstream 500 after 5 attempts", Attempts: 5, At: at, LastStatus: 500, LastBody: []byte("boom")}
	if err := q.DeadLetter(ctx, d, dl); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	if err := q.Ack(ctx, d); !errors.Is(err, backends.ErrLeaseLost) {
		t.Fatalf("Ack after DeadLetter: got %v, want ErrLeaseLost", err)
	}

	consumer, err := sarama.NewConsumer(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(testTopic+"-dlq", 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var msg *sarama.ConsumerMessage
	select {
	case msg = <-pc.Messages():
	case <-time.After(10 * time.Second):
		t.Fatal("no dead letter")
	}
	got, err := DecodeDeadLetter(msg)
	if err != nil {
		t.Fatal(err)
	}
	dl.Job = job
	if diff := cmp.Diff(&dl, got); diff != "" {
		t.Errorf("dead letter (-want +got):\n%s", diff)
	}
	st, err := q.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "original committed", func() (bool, string) {
		off, meta := committed(t, brokers, testTopic, 0)
		return off == 1, fmtOffsets(off, meta)
	})
	if st.DeadLetters != 1 {
		t.Errorf("Stats.DeadLetters = %d, want 1", st.DeadLetters)
	}
}

// TestMaxDepth: above MaxDepth, Enqueue answers ErrFull.
func TestMaxDepth(t *testing.T) {
	brokers := startCluster(t, 1)
	opts := testOptions(brokers)
	opts.MaxDepth = 3
	q := newQueue(t, opts)
	enqueue(t, q, newJob("", "1"), newJob("", "2"), newJob("", "3"))
	if err := q.Enqueue(context.Background(), newJob("", "4")); !errors.Is(err, backends.ErrFull) {
		t.Fatalf("4th Enqueue with MaxDepth 3: got %v, want ErrFull", err)
	}
	st, err := q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Depth != 3 {
		t.Errorf("Stats.Depth = %d, want 3", st.Depth)
	}
}

// TestClosed: after Close every call answers ErrClosed.
func TestClosed(t *testing.T) {
	brokers := startCluster(t, 1)
	q := newQueue(t, testOptions(brokers))
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := context.Background()
	if err := q.Enqueue(ctx, newJob("", "x")); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Enqueue after Close: %v", err)
	}
	if _, err := q.Receive(ctx, "w", 1); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Receive after Close: %v", err)
	}
	if _, err := q.Stats(ctx); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Stats after Close: %v", err)
	}
	if err := q.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCreateTopics: with CreateTopics a fresh cluster gets the three topics.
func TestCreateTopics(t *testing.T) {
	brokers := startCluster(t, 1)
	opts := testOptions(brokers)
	opts.Topic = "fresh"
	opts.CreateTopics = true
	q := newQueue(t, opts)
	cn, err := q.connection(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	parts, err := cn.client.Partitions("fresh-retry")
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != defaultPartitions {
		t.Errorf("fresh-retry has %d partitions, want %d", len(parts), defaultPartitions)
	}
	enqueue(t, q, newJob("", "x"))
	ack(t, q, receiveN(t, q, "w", 1, 10*time.Second)[0])
}
