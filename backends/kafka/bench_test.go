package kafka

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/openhqm/openhqm/backends"
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

// BenchmarkRecord measures encoding and decoding a record value: a job with
// a few headers and a 1 KiB body.
func BenchmarkRecord(b *testing.B) {
	j := newJob("tenant-1", "")
	j.Headers = append(j.Headers, backends.Header{Name: "Accept", Value: "*/*"},
		backends.Header{Name: "X-Request-Id", Value: "0123456789abcdef"}, backends.Header{Name: "User-Agent", Value: "curl/8.0"})
	j.Body = make([]byte, 1024)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeJob(j)
		}
	})
	v := encodeJob(j)
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeJob(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
