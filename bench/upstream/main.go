// Command upstream is the benchmark's origin: a fasthttp server answering every
// request with 200 and a fixed 100-byte JSON body, optionally after a delay.
// With -echo it answers the request's own body instead, so that a benchmark
// can check that every job stored the answer to its own request.
package main

import (
	"flag"
	"log"
	"time"

	"github.com/valyala/fasthttp"
)

var body = []byte(`{"status":"ok","service":"bench-upstream","payload":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"}`)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	delay := flag.Duration("delay", 0, "delay before answering")
	echo := flag.Bool("echo", false, "answer the request body instead of the fixed one")
	flag.Parse()
	h := func(ctx *fasthttp.RequestCtx) {
		if *delay > 0 {
			time.Sleep(*delay)
		}
		ctx.SetContentType("application/json")
		if *echo {
			ctx.SetBody(ctx.Request.Body())
			return
		}
		ctx.SetBody(body)
	}
	log.Fatal((&fasthttp.Server{Handler: h, Name: "upstream"}).ListenAndServe(*addr))
}
