package testredis

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func do(t *testing.T, addr, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		t.Fatalf("write: %v", err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if strings.HasPrefix(line, "$") && !strings.HasPrefix(line, "$-1") {
		line, _ = r.ReadString('\n')
	}
	return strings.TrimSpace(line)
}

func TestRestartKeepsDataWithAOF(t *testing.T) {
	s := Start(t, WithAOF())
	if strings.HasSuffix(s.Addr(), ":6379") {
		t.Fatalf("uses the machine's port 6379")
	}
	if got := do(t, s.Addr(), "SET k v"); got != "+OK" {
		t.Fatalf("SET = %q", got)
	}
	s.Restart(t)
	if got := do(t, s.Addr(), "GET k"); got != "v" {
		t.Fatalf("GET after restart = %q, want v", got)
	}
}

func TestStartMainAndStop(t *testing.T) {
	s, err := StartMain()
	if err != nil {
		t.Fatal(err)
	}
	if got := do(t, s.Addr(), "PING"); got != "+PONG" {
		t.Fatalf("PING = %q", got)
	}
	s.Stop()
	s.Stop()
	if _, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond); err == nil {
		t.Fatalf("server still listening after Stop")
	}
}

func TestMissingBinaryHint(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := StartMain()
	if err == nil || !strings.Contains(err.Error(), `apt-get install -y redis-server`) {
		t.Fatalf("err = %v, want the install hint", err)
	}
}

func TestSentinelFailsOver(t *testing.T) {
	s := StartSentinel(t, 2, 3)
	if m, err := s.Master(); err != nil || m != s.Primary.Addr() {
		t.Fatalf("master = %q, %v; want %s", m, err, s.Primary.Addr())
	}
	s.Primary.Kill()
	waitFor(t, 20*time.Second, "a replica promoted", func() error {
		m, err := s.Master()
		if err != nil {
			return err
		}
		if m == s.Primary.Addr() {
			return errors.New("still the old primary")
		}
		if role, err := Role(m); err != nil || role != "master" {
			return fmt.Errorf("%s has role %q (%v)", m, role, err)
		}
		return nil
	})
}

func TestClusterServesAllSlots(t *testing.T) {
	c := StartCluster(t, 3, 1)
	v, err := Do(c.Nodes[0].Addr(), "CLUSTER", "INFO")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cluster_slots_assigned:16384", "cluster_size:3", "cluster_known_nodes:6"} {
		if !strings.Contains(v, want) {
			t.Errorf("CLUSTER INFO lacks %q:\n%s", want, v)
		}
	}
	masters := 0
	for _, n := range c.Nodes {
		if role, err := Role(n.Addr()); err != nil {
			t.Fatal(err)
		} else if role == "master" {
			masters++
		}
	}
	if masters != 3 {
		t.Errorf("%d masters, want 3", masters)
	}
}
