package memory

import (
	"context"
	"testing"

	"github.com/openhqm/openhqm/backends/backendtest"
)

// BenchmarkEnqueue measures concurrent Enqueue into the memory queue while
// one consumer receives and acknowledges in batches of 16.
func BenchmarkEnqueue(b *testing.B) {
	q, _ := NewQueue(QueueOptions{Name: "bench"})
	defer q.Close()
	job := backendtest.NewJob("q", 1)
	job.Body = make([]byte, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			ds, _ := q.Receive(ctx, "c", 16)
			for _, d := range ds {
				q.Ack(ctx, d)
			}
		}
	}()
	b.SetParallelism(25)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := q.Enqueue(ctx, job); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	cancel()
	<-done
}
