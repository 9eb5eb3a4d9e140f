package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/openhqm/openhqm/backends"
)

// TestCommitPointBelowRetention: when retention dropped records below the
// group's commit point (the workers were down longer than retention.ms),
// the backlog starts at the oldest record kept: List reads it without
// error and Stats counts only what is left.
func TestCommitPointBelowRetention(t *testing.T) {
	brokers := startCluster(t, 1)
	q := newQueue(t, testOptions(brokers))
	for range 5 {
		enqueue(t, q, newJob("k", "b"))
	}
	cl, err := sarama.NewClient(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	b, err := cl.Coordinator(testGroup)
	if err != nil {
		t.Fatal(err)
	}
	req := &sarama.OffsetCommitRequest{Version: 2, ConsumerGroup: testGroup, ConsumerGroupGeneration: -1, RetentionTime: -1}
	req.AddBlock(testTopic, 0, 1, -1, "")
	if _, err := b.CommitOffset(req); err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdminFromClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteRecords(testTopic, map[int32]int64{0: 3}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	es, err := q.List(ctx, backends.Filter{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(es) != 2 {
		t.Fatalf("List: %d entries, want the 2 records left after retention", len(es))
	}
	st, err := q.Stats(ctx)
	if err != nil || st.Depth != 2 {
		t.Fatalf("Stats: %+v %v, want depth 2", st, err)
	}
}
