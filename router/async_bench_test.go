package router

import (
	"testing"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/memory"
	"github.com/openhqm/openhqm/internal/testredis"
	"github.com/valyala/fasthttp"
)

// BenchmarkSubmit measures accepted async submits through the handler (no
// network: a RequestCtx per goroutine, reused) with 1 KiB bodies: the
// memory backend, then Redis (queue with grouped XADDs, result store on the
// same server), 25 callers per core as in the redis backend's BenchmarkEnqueue.
func BenchmarkSubmit(b *testing.B) {
	body := make([]byte, 1024)
	for _, bc := range []string{"memory", "redis"} {
		b.Run(bc, func(b *testing.B) {
			var q backends.Queue
			var res backends.ResultStore
			switch bc {
			case "memory":
				mq, _ := memory.NewQueue(memory.QueueOptions{Name: "jobs"})
				mr, _ := memory.NewResults(memory.ResultsOptions{MaxEntries: 1 << 30})
				b.Cleanup(func() { mq.Close(); mr.Close() })
				q, res = mq, mr
			case "redis":
				srv := testredis.Start(b)
				q, res = redisBackends(b, srv, "bench-submit")
			}
			srv := newTestServer(b, nil, Deps{Queues: map[string]Enqueuer{"jobs": q}, Results: res})
			if err := srv.Apply(asyncConfig(b)); err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(25)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				for pb.Next() {
					ctx.Request.Reset()
					ctx.Response.Reset()
					ctx.Request.Header.SetMethod("POST")
					ctx.Request.SetRequestURI("/orders/1")
					ctx.Request.Header.SetHost("bench")
					ctx.Request.Header.SetContentType("application/json")
					ctx.Request.SetBody(body)
					srv.Handler(&ctx)
					if ctx.Response.StatusCode() != 202 {
						b.Errorf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepted/s")
		})
	}
}
