// Command idleconns measures what idle client connections cost a server: it
// reads the server's resident memory (VmRSS in /proc/PID/status), opens -n
// connections to -addr, sends one request on each (GET -path) and reads the
// answer, keeps them open and idle, reads VmRSS again, and prints the
// answers by status and both figures:
//
//	go run ./bench/idleconns -addr 127.0.0.1:8000 -pid $(pgrep -nx openhqm) -n 10000
//
// The client needs n file descriptors of its own (ulimit -n).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8000", "server address")
	pid := flag.Int("pid", 0, "server process id, for its VmRSS")
	n := flag.Int("n", 10000, "connections to open")
	path := flag.String("path", "/-/healthz", "path requested once on each connection")
	settle := flag.Duration("settle", 2*time.Second, "wait before reading VmRSS with the connections open")
	flag.Parse()
	if *pid == 0 {
		fmt.Fprintln(os.Stderr, "idleconns: -pid is required")
		os.Exit(2)
	}
	before, err := vmRSS(*pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "idleconns:", err)
		os.Exit(1)
	}

	var (
		mu     sync.Mutex
		conns  []net.Conn
		status = map[string]int{}
	)
	work := make(chan struct{})
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range work {
				code, c := open(*addr, *path)
				mu.Lock()
				status[code]++
				if c != nil {
					conns = append(conns, c)
				}
				mu.Unlock()
			}
		})
	}
	for range *n {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	time.Sleep(*settle)
	after, err := vmRSS(*pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "idleconns:", err)
		os.Exit(1)
	}
	// Are the kept connections still open? A closed one reads EOF at once.
	open := 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				open++
			}
		}
	}
	keys := make([]string, 0, len(status))
	for k := range status {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, status[k]))
	}
	fmt.Printf("connections=%d answers: %s; still open: %d\n", *n, strings.Join(parts, " "), open)
	fmt.Printf("server VmRSS: before %.1f MiB, with the connections open %.1f MiB (%.1f KiB per open connection)\n",
		float64(before)/1024, float64(after)/1024, float64(after-before)/float64(max(open, 1)))
	for _, c := range conns {
		c.Close()
	}
}

// open dials, sends one request and reads its answer; the connection is
// returned open when the server kept it.
func open(addr, path string) (string, net.Conn) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return "dial-error", nil
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: idleconns\r\n\r\n", path); err != nil {
		c.Close()
		return "write-error", nil
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return "read-error", nil
	}
	resp.Body.Close()
	_ = c.SetDeadline(time.Time{})
	if resp.Close {
		c.Close()
		return fmt.Sprint(resp.StatusCode), nil
	}
	return fmt.Sprint(resp.StatusCode), c
}

// vmRSS is the resident set size of pid in KiB.
func vmRSS(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int
			_, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb)
			return kb, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
