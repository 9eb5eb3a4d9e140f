// Command loadgen is a closed-loop HTTP load generator used by `make bench`
// when wrk is not installed: C connections each send the next request as soon
// as the previous answer arrived, for a fixed duration. It prints a summary in
// the same terms as wrk: requests/s, p50 and p99 latency, and non-2xx answers.
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8000/", "target URL")
	conns := flag.Int("c", 50, "connections")
	dur := flag.Duration("d", 8*time.Second, "duration")
	method := flag.String("method", "GET", "method")
	body := flag.String("body", "", "request body")
	header := flag.String("H", "", "one extra header, Name: value")
	rate := flag.Float64("rate", 0, "total requests per second, spread over the connections; 0: as fast as possible")
	flag.Parse()

	client := &fasthttp.Client{MaxConnsPerHost: *conns}
	deadline := time.Now().Add(*dur)
	lats := make([][]time.Duration, *conns)
	bad := make([]int, *conns)
	var wg sync.WaitGroup
	for i := range *conns {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			var interval time.Duration
			if *rate > 0 {
				interval = time.Duration(float64(*conns) / *rate * float64(time.Second))
			}
			next := time.Now().Add(time.Duration(i) * interval / time.Duration(*conns))
			for time.Now().Before(deadline) {
				if interval > 0 {
					time.Sleep(time.Until(next))
					next = next.Add(interval)
				}
				req.Reset()
				req.SetRequestURI(*url)
				req.Header.SetMethod(*method)
				if *body != "" {
					req.SetBodyString(*body)
				}
				if *header != "" {
					name, value, _ := cut(*header)
					req.Header.Set(name, value)
				}
				start := time.Now()
				err := client.Do(req, resp)
				lats[i] = append(lats[i], time.Since(start))
				if err != nil || resp.StatusCode() >= 300 {
					bad[i]++
				}
			}
		})
	}
	wg.Wait()
	var all []time.Duration
	errs := 0
	for i := range lats {
		all = append(all, lats[i]...)
		errs += bad[i]
	}
	if len(all) == 0 {
		fmt.Fprintln(os.Stderr, "no requests completed")
		os.Exit(1)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[int(float64(len(all)-1)*p)] }
	fmt.Printf("requests %d\nrps %.0f\np50_us %d\np99_us %d\nnon2xx %d\n",
		len(all), float64(len(all))/dur.Seconds(), pct(0.50).Microseconds(), pct(0.99).Microseconds(), errs)
}

func cut(h string) (string, string, bool) {
	for i := 0; i < len(h); i++ {
		if h[i] == ':' {
			v := h[i+1:]
			for len(v) > 0 && v[0] == ' ' {
				v = v[1:]
			}
			return h[:i], v, true
		}
	}
	return h, "", false
}
