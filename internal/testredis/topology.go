package testredis

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ErrNoCLI is reported when redis-cli, which joins cluster nodes, is missing.
var ErrNoCLI = errors.New(`redis-cli not found on PATH: install it with "apt-get install -y redis-tools"`)

// MasterName is the name the sentinels of StartSentinel monitor the primary under.
const MasterName = "mymaster"

// Sentinel is a primary, its replicas and the sentinels watching them, each
// a process of its own on a free port. Sentinels run as `redis-server
// --sentinel` (the same binary that Debian's redis-sentinel package starts).
type Sentinel struct {
	Primary   *Server
	Replicas  []*Server
	Sentinels []*Server
}

// StartSentinel starts a primary, replicas replicas of it and sentinels
// sentinels (quorum: a majority of them) that fail over within about two
// seconds of the primary's death. Everything stops with the test.
func StartSentinel(t testing.TB, replicas, sentinels int) *Sentinel {
	t.Helper()
	s := &Sentinel{Primary: Start(t, WithArgs(fastSync...))}
	for range replicas {
		s.Replicas = append(s.Replicas, Start(t, WithArgs(append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(s.Primary.port)}, fastSync...)...)))
	}
	for _, r := range s.Replicas {
		waitSynced(t, r.Addr())
	}
	conf := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d %d\n"+
		"sentinel down-after-milliseconds %[1]s 1000\n"+
		"sentinel failover-timeout %[1]s 5000\n"+
		"sentinel parallel-syncs %[1]s 2\n", MasterName, s.Primary.port, sentinels/2+1)
	for range sentinels {
		s.Sentinels = append(s.Sentinels, Start(t, func(c *config) { c.sentinel = conf }))
	}
	// Sentinels find each other and the replicas through the primary's hello
	// channel: wait until each knows them all, so a failover can start at once.
	for _, sn := range s.Sentinels {
		waitFor(t, 15*time.Second, "sentinel "+sn.Addr()+" sees the others", func() error {
			v, err := Do(sn.Addr(), "SENTINEL", "MASTER", MasterName)
			if err != nil {
				return err
			}
			if !strings.Contains(v, "num-other-sentinels\n"+strconv.Itoa(sentinels-1)+"\n") ||
				!strings.Contains(v, "num-slaves\n"+strconv.Itoa(replicas)+"\n") {
				return errors.New("not yet")
			}
			return nil
		})
	}
	return s
}

// fastSync makes a primary start a full sync of a new replica at once;
// Redis waits 5 seconds by default (repl-diskless-sync-delay), for more
// replicas to share the transfer.
var fastSync = []string{"--repl-diskless-sync-delay", "0"}

// waitSynced waits until the replica at addr is linked to its primary.
func waitSynced(t testing.TB, addr string) {
	t.Helper()
	waitFor(t, 15*time.Second, "replica "+addr+" in sync", func() error {
		info, err := Do(addr, "INFO", "replication")
		if err == nil && !strings.Contains(info, "master_link_status:up") {
			err = errors.New("link down")
		}
		return err
	})
}

// Addrs are the sentinels' host:port.
func (s *Sentinel) Addrs() []string {
	out := make([]string, len(s.Sentinels))
	for i, sn := range s.Sentinels {
		out[i] = sn.Addr()
	}
	return out
}

// Master asks the first sentinel that answers for the primary's host:port.
func (s *Sentinel) Master() (string, error) {
	var err error
	for _, sn := range s.Sentinels {
		var v string
		if v, err = Do(sn.Addr(), "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MasterName); err == nil {
			host, port, _ := strings.Cut(v, "\n")
			return net.JoinHostPort(host, port), nil
		}
	}
	return "", err
}

// Cluster is a Redis Cluster of primaries, each with replicas, every node a
// process of its own on a free port.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts primaries×(1+replicas) cluster-mode nodes and joins
// them with `redis-cli --cluster create`. cluster-node-timeout is 1s, so a
// dead primary's replica takes over within a few seconds, and the cluster
// keeps serving the slots of live primaries meanwhile
// (cluster-require-full-coverage no). Every node stops with the test.
func StartCluster(t testing.TB, primaries, replicas int) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("testredis: %v", ErrNoCLI)
	}
	c := &Cluster{}
	args := []string{"--cluster", "create"}
	for range primaries * (1 + replicas) {
		n := Start(t, WithAOF(), WithArgs(append([]string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000", "--cluster-require-full-coverage", "no"}, fastSync...)...))
		c.Nodes = append(c.Nodes, n)
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("testredis: redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range c.Nodes {
		waitFor(t, 20*time.Second, "cluster state ok on "+n.Addr(), func() error {
			v, err := Do(n.Addr(), "CLUSTER", "INFO")
			if err == nil && !strings.Contains(v, "cluster_state:ok") {
				err = errors.New("not ok")
			}
			return err
		})
	}
	// Writes that must reach a replica (WAIT) succeed from the start.
	for _, n := range c.Nodes {
		if role, err := Role(n.Addr()); err == nil && role == "slave" {
			waitSynced(t, n.Addr())
		}
	}
	return c
}

// Addrs are the nodes' host:port.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// Role is "master" or "slave" as the node at addr reports it (INFO replication).
func Role(addr string) (string, error) {
	v, err := Do(addr, "INFO", "replication")
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(v, "\n") {
		if r, ok := strings.CutPrefix(strings.TrimSpace(line), "role:"); ok {
			return r, nil
		}
	}
	return "", errors.New("no role in INFO replication")
}

// Do sends one command to addr and answers its reply as text: a status or
// number as it is, a bulk string's bytes, an array's elements one per line
// (nested arrays flattened). An error reply is an error.
func Do(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	var out []string
	if err := readReply(bufio.NewReader(c), &out); err != nil {
		return "", err
	}
	return strings.Join(out, "\n"), nil
}

func readReply(r *bufio.Reader, out *[]string) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		*out = append(*out, line[1:])
	case '-':
		return errors.New(line[1:])
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		*out = append(*out, strings.ReplaceAll(string(buf[:n]), "\r\n", "\n"))
	case '*':
		n, _ := strconv.Atoi(line[1:])
		for range n {
			if err := readReply(r, out); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// waitFor polls f every 50 ms until it succeeds, failing the test after d.
func waitFor(t testing.TB, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testredis: %s: not within %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
