// Package testredis starts a private redis-server for tests: on a free
// 127.0.0.1 port (never 6379), in its own directory, stopped when the test or
// the package's TestMain ends. It never mocks Redis and never uses a server it
// did not start.
package testredis

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ErrNotInstalled is returned (and reported by Start) when redis-server is not
// on PATH. Tests fail with it; they never skip.
var ErrNotInstalled = errors.New(`redis-server not found on PATH: install it with "apt-get install -y redis-server"`)

// Option configures a Server.
type Option func(*config)

type config struct {
	aof      bool
	args     []string
	sentinel string // sentinel mode: the lines of its configuration file
}

// WithAOF turns on the append-only file (appendfsync everysec), so that data
// survives Restart.
func WithAOF() Option { return func(c *config) { c.aof = true } }

// WithArgs passes extra redis-server arguments, e.g. "--maxmemory", "10mb".
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// Server is one redis-server process. Its methods are safe for concurrent use.
type Server struct {
	cfg     config
	port    int
	dir     string
	ownsDir bool

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts a redis-server for the test and registers its shutdown with
// t.Cleanup. It fails the test (with an install hint) when redis-server is missing.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := start(t.TempDir(), false, opts)
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartMain is Start for TestMain, where there is no testing.TB: the caller
// must call Stop when the tests are done (it also removes the directory).
func StartMain(opts ...Option) (*Server, error) {
	dir, err := os.MkdirTemp("", "testredis-")
	if err != nil {
		return nil, fmt.Errorf("testredis: %w", err)
	}
	s, err := start(dir, true, opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testredis: %w", err)
	}
	return s, nil
}

func start(dir string, ownsDir bool, opts []Option) (*Server, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, ErrNotInstalled
	}
	s := &Server{cfg: cfg, dir: dir, ownsDir: ownsDir}
	var err error
	for range 5 {
		if s.port, err = freePort(); err != nil {
			return nil, err
		}
		if err = s.launch(); err == nil {
			return s, nil
		}
	}
	return nil, err
}

// freePort asks the kernel for a free port, refusing 6379 (the machine's own Redis).
func freePort() (int, error) {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port != 6379 {
			return port, nil
		}
	}
}

func (s *Server) launch() error {
	var args []string
	if s.cfg.sentinel != "" {
		// A sentinel rewrites its configuration file, so it gets one of its own.
		conf := filepath.Join(s.dir, "sentinel.conf")
		if _, err := os.Stat(conf); err != nil {
			if err := os.WriteFile(conf, []byte(s.cfg.sentinel), 0o600); err != nil {
				return fmt.Errorf("write sentinel.conf: %w", err)
			}
		}
		args = append(args, conf, "--sentinel")
	}
	args = append(args,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--protected-mode", "yes",
		"--logfile", filepath.Join(s.dir, "redis.log"),
	)
	switch {
	case s.cfg.sentinel != "": // a sentinel keeps no data
	case s.cfg.aof:
		args = append(args, "--save", "", "--appendonly", "yes", "--appendfsync", "everysec")
	default:
		args = append(args, "--save", "", "--appendonly", "no")
	}
	args = append(args, s.cfg.args...)
	cmd := exec.Command("redis-server", args...)
	// The server dies with the test binary even when the binary is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server on port %d exited: %v (log: %s)", s.port, err, s.logTail())
		default:
		}
		if ping(s.Addr()) == nil {
			s.mu.Lock()
			s.cmd = cmd
			s.mu.Unlock()
			// Reap the process later: Stop waits on exited.
			waiters.Store(cmd, exited)
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill()
	<-exited
	return fmt.Errorf("redis-server on port %d did not answer PING within 10s (log: %s)", s.port, s.logTail())
}

// waiters maps each running *exec.Cmd to the channel its Wait result arrives on.
var waiters sync.Map

// ping sends PING and expects +PONG (a server still loading its AOF answers -LOADING).
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("ping: %q", strings.TrimSpace(line))
	}
	return nil
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is redis://host:port/0 for the server.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Dir is the server's working directory (AOF and log files).
func (s *Server) Dir() string { return s.dir }

// Restart stops the server gracefully and starts it again on the same port and
// directory; with WithAOF the data survives.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.RestartErr(); err != nil {
		t.Fatalf("testredis: %v", err)
	}
}

// RestartErr is Restart without a testing.TB.
func (s *Server) RestartErr() error {
	s.halt(syscall.SIGTERM)
	var err error
	for range 50 { // the port may take a moment to be released
		if err = s.launch(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Pause freezes the server with SIGSTOP: it keeps its connections and its
// port, and reads and answers nothing (a stalled Redis) until Resume.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume lets a paused server run again (SIGCONT); it then executes what
// clients sent meanwhile.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Signal(sig)
	}
}

// Kill stops the server with SIGKILL (a crash) and leaves it stopped; Start it
// again with RestartErr (which then only starts).
func (s *Server) Kill() { s.halt(syscall.SIGKILL) }

// Halt stops the server gracefully (SIGTERM) and leaves it stopped until
// RestartErr; clients see an outage meanwhile.
func (s *Server) Halt() { s.halt(syscall.SIGTERM) }

func (s *Server) halt(sig syscall.Signal) {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	v, _ := waiters.LoadAndDelete(cmd)
	exited := v.(chan error)
	cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// Stop stops the server (and removes its directory when StartMain made it).
// It is safe to call more than once.
func (s *Server) Stop() {
	s.halt(syscall.SIGTERM)
	if s.ownsDir {
		os.RemoveAll(s.dir)
	}
}
