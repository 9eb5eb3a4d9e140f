// Command stream measures what large answers cost `openhqm serve` in
// memory: it serves reproducible pseudo-random bodies from an app of its
// own, starts a real `openhqm serve` in front of it (a fresh process per
// scenario), downloads through it and checks every byte (SHA-256), and
// reports the serve process's peak RSS (VmHWM in /proc/PID/status).
//
//	go build -o bin/ ./cmd/openhqm ./bench/stream
//	bin/stream -bin bin/openhqm                       # 1 GiB, then 8 slow 60 MiB downloads
//	bin/stream -bin bin/openhqm -size 1GiB -slow 8 -slow-size 60MiB -slow-rate 6MiB
//
// Scenario "one": one client downloads -size as fast as it can. Scenario
// "slow": -slow clients at once each download -slow-size, reading at most
// -slow-rate bytes per second, so the answers outpace the clients and a
// proxy that buffers them holds them all.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

func main() {
	bin := flag.String("bin", "bin/openhqm", "the openhqm binary to measure")
	size := flag.String("size", "1GiB", "the one fast download")
	slow := flag.Int("slow", 8, "concurrent slow downloads")
	slowSize := flag.String("slow-size", "60MiB", "size of each slow download")
	slowRate := flag.String("slow-rate", "6MiB", "bytes per second each slow client reads")
	chunked := flag.Bool("chunked", false, "the app sends chunks instead of a Content-Length")
	flag.Parse()

	app, err := startApp()
	if err != nil {
		fail(err)
	}
	one, err := run(*bin, app, func(addr string) error {
		return download(addr, 1, parseSize(*size), *chunked, 0)
	})
	report("one", fmt.Sprintf("1 download of %s", *size), one, err)
	many, err := run(*bin, app, func(addr string) error {
		var wg sync.WaitGroup
		errs := make([]error, *slow)
		for i := range *slow {
			wg.Go(func() { errs[i] = download(addr, uint64(100+i), parseSize(*slowSize), *chunked, parseSize(*slowRate)) })
		}
		wg.Wait()
		return errors.Join(errs...)
	})
	report("slow", fmt.Sprintf("%d downloads of %s at %s/s each", *slow, *slowSize, *slowRate), many, err)
}

type outcome struct {
	cpu    time.Duration // the serve process's user+system time
	rssKiB int64
	took   time.Duration
}

func report(name, what string, o outcome, err error) {
	status := "intact"
	if err != nil {
		status = "FAILED: " + err.Error()
	}
	fmt.Printf("%-5s %-40s peak RSS %6.1f MiB  serve CPU %6.2f s  %6.1f s  %s\n",
		name, what, float64(o.rssKiB)/1024, o.cpu.Seconds(), o.took.Seconds(), status)
}

// run starts `openhqm serve` in front of app, runs load against it and
// returns the process's peak RSS.
func run(bin, app string, load func(addr string) error) (outcome, error) {
	dir, err := os.MkdirTemp("", "openhqm-stream-")
	if err != nil {
		return outcome{}, err
	}
	defer os.RemoveAll(dir)
	addr, err := freeAddr()
	if err != nil {
		return outcome{}, err
	}
	cfg := fmt.Sprintf(`server {
  listen = %q
}
endpoint "app" {
  url     = "http://%s"
  timeout = "10s"
}
route "all" {
  match { path_prefix = "/" }
  mode     = "sync"
  endpoint = "app"
}
telemetry {
  log_level = "warn"
}
`, addr, app)
	path := filepath.Join(dir, "openhqm.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return outcome{}, err
	}
	cmd := exec.Command(bin, "serve", "-c", path)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return outcome{}, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := waitReady(addr); err != nil {
		return outcome{}, err
	}
	start := time.Now()
	err = load(addr)
	o := outcome{took: time.Since(start)}
	o.rssKiB, o.cpu = procStats(cmd.Process.Pid)
	return o, err
}

// download GETs n bytes of payload(seed) through addr and checks them,
// reading at most rate bytes per second when rate > 0.
func download(addr string, seed uint64, n int64, chunked bool, rate int64) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	ch := 0
	if chunked {
		ch = 1
	}
	fmt.Fprintf(c, "GET /?n=%d&seed=%d&chunked=%d HTTP/1.1\r\nHost: bench\r\n\r\n", n, seed, ch)
	resp := &fasthttp.Response{StreamBody: true}
	if err := resp.Read(bufio.NewReaderSize(c, 64<<10)); err != nil {
		return err
	}
	if resp.StatusCode() != 200 {
		return fmt.Errorf("status %d: %.200s", resp.StatusCode(), resp.Body())
	}
	body := resp.BodyStream()
	if rate > 0 {
		body = &paced{r: body, rate: rate, start: time.Now()}
	}
	got := sha256.New()
	m, err := io.Copy(got, body)
	if err != nil {
		return fmt.Errorf("after %d bytes: %w", m, err)
	}
	want := sha256.New()
	_, _ = io.Copy(want, payload(seed, n))
	if m != n || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		return fmt.Errorf("got %d bytes with sha256 %x, want %d bytes with %x", m, got.Sum(nil), n, want.Sum(nil))
	}
	return nil
}

// paced reads at most rate bytes per second.
type paced struct {
	r     io.Reader
	rate  int64
	start time.Time
	n     int64
}

func (p *paced) Read(b []byte) (int, error) {
	if len(b) > 32<<10 {
		b = b[:32<<10]
	}
	if ahead := time.Duration(float64(p.n)/float64(p.rate)*float64(time.Second)) - time.Since(p.start); ahead > 0 {
		time.Sleep(ahead)
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	return n, err
}

// payload is n reproducible pseudo-random bytes named by seed.
func payload(seed uint64, n int64) io.Reader {
	var s [32]byte
	copy(s[:], strconv.FormatUint(seed, 10))
	return io.LimitReader(rand.NewChaCha8(s), n)
}

// startApp serves GET /?n=N&seed=S&chunked=0|1 on 127.0.0.1.
func startApp() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		args := ctx.QueryArgs()
		if len(args.Peek("n")) == 0 {
			ctx.SetBodyString("ok") // readiness
			return
		}
		n, _ := strconv.ParseInt(string(args.Peek("n")), 10, 64)
		seed, _ := strconv.ParseUint(string(args.Peek("seed")), 10, 64)
		ctx.SetContentType("application/octet-stream")
		if string(args.Peek("chunked")) == "1" {
			ctx.SetBodyStream(struct{ io.Reader }{payload(seed, n)}, -1)
			return
		}
		ctx.SetBodyStream(payload(seed, n), int(n))
	}}
	go func() { _ = s.Serve(ln) }()
	return ln.Addr().String(), nil
}

func waitReady(addr string) error {
	for range 200 {
		code, _, err := fasthttp.Get(nil, "http://"+addr+"/")
		if err == nil && code == 200 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("openhqm did not answer on %s", addr)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// procStats reads the peak RSS (KiB) and the CPU time of pid.
func procStats(pid int) (int64, time.Duration) {
	var hwm int64
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				hwm, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			}
		}
	}
	var cpu time.Duration
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			f := strings.Fields(s[i+1:])
			if len(f) > 12 {
				u, _ := strconv.ParseInt(f[11], 10, 64)
				k, _ := strconv.ParseInt(f[12], 10, 64)
				cpu = time.Duration(u+k) * time.Second / 100 // CLK_TCK is 100 on Linux
			}
		}
	}
	return hwm, cpu
}

func parseSize(s string) int64 {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if v, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = v, m
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		fail(fmt.Errorf("bad size %q", s))
	}
	return n * mult
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "stream:", err)
	os.Exit(1)
}
