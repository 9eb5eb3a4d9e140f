package kafka

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkEnqueue measures confirmed (acks=all, idempotent) enqueues against
// the in-process broker from parallel callers, so the producer batches.
func BenchmarkEnqueue(b *testing.B) {
	brokers := startCluster(b, 3)
	q := newQueue(b, testOptions(brokers))
	body := make([]byte, 512)
	var n atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			j := newJob(fmt.Sprint(n.Add(1)%64), "")
			j.Body = body
			if err := q.Enqueue(ctx, j); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepted/s")
}
