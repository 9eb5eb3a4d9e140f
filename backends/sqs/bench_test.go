package sqs

import (
	"testing"
	"time"

	"github.com/openhqm/openhqm/backends/backendtest"
)

// BenchmarkEnqueue measures a submit's cost on the client side, goaws's
// included (it runs in the same process; a CPU profile tells them apart).
func BenchmarkEnqueue(b *testing.B) {
	q := newQueue(b, testOptions(createQueue(b, "bench-enqueue", time.Minute)))
	job := backendtest.NewJob("q", 1)
	job.Body = make([]byte, 1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := q.Enqueue(b.Context(), job); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
