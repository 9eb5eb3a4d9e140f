package redis

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/openhqm/openhqm/backends/backendtest"
)

// BenchmarkEnqueue measures accepted jobs per second with 1 KiB bodies and 50
// concurrent submitters (SetParallelism(25) on 2 cores), each waiting for its
// own job to be stored, with and without grouping concurrent enqueues.
func BenchmarkEnqueue(b *testing.B) {
	for _, bc := range []struct {
		name  string
		batch BatchOptions
	}{
		{"unbatched", BatchOptions{Disabled: true}},
		{"batched", BatchOptions{}},
	} {
		for _, par := range []int{1, 25} {
			b.Run(fmt.Sprintf("%s/callers=%dxGOMAXPROCS", bc.name, par), func(b *testing.B) {
				name := fmt.Sprintf("bench-%s-%d", bc.name, par)
				q := newQueue(b, srv.URL(), Options{Stream: name, Batch: bc.batch})
				rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
				defer rdb.Close()
				defer rdb.Del(context.Background(), name)
				job := backendtest.NewJob("q", 1)
				job.Body = make([]byte, 1024)
				b.SetParallelism(par)
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := q.Enqueue(context.Background(), job); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
			})
		}
	}
}

// BenchmarkEnqueueWithResult is BenchmarkEnqueue storing each job with its
// pending result record (a distinct id per job, as submits have; making the
// id is one allocation of the loop), the router's submit path on Redis.
func BenchmarkEnqueueWithResult(b *testing.B) {
	for _, bc := range batchModes {
		for _, par := range []int{1, 25} {
			b.Run(fmt.Sprintf("%s/callers=%dxGOMAXPROCS", bc.name, par), func(b *testing.B) {
				name := fmt.Sprintf("bench-wr-%s-%d", bc.name, par)
				q, _ := resultsPair(b, srv.URL(), Options{Stream: name, Batch: bc.batch}, ResultsOptions{PendingTTL: time.Minute})
				rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
				defer rdb.Close()
				defer rdb.Del(context.Background(), name)
				base := backendtest.NewJob("q", 1)
				base.Body = make([]byte, 1024)
				var seq atomic.Int64
				b.SetParallelism(par)
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					job, pending := *base, *pendingOf(base)
					id := []byte(fmt.Sprintf("%s-%d-", base.ID, seq.Add(1)))
					n := len(id)
					for i := 0; pb.Next(); i++ {
						id = strconv.AppendInt(id[:n], int64(i), 10)
						job.ID = string(id)
						pending.ID = job.ID
						if err := q.EnqueueWithResult(context.Background(), &job, &pending); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
			})
		}
	}
}
