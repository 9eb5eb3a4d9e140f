package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/openhqm/openhqm/backends/wire"
	"github.com/openhqm/openhqm/internal/testredis"
	"github.com/openhqm/openhqm/internal/testsqs"
)

// sqsConfig is serve's and the workers' configuration: an SQS queue on the
// test's goaws (which speaks only the Query protocol), results in Redis so
// that the workers can reach them, a route to the app and one to an app
// that always fails.
func sqsConfig(listen, appURL, brokenURL, sqsURL, queueURL, redisURL string) string {
	return fmt.Sprintf(`
server {
  listen = %q
}

endpoint "app" {
  url     = %q
  timeout = "2s"
}

endpoint "broken" {
  url     = %q
  timeout = "2s"
}

queue "jobs" {
  backend = "sqs"
  sqs {
    queue_url = %q
    region    = "us-east-1"
    endpoint  = %q
    protocol  = "query"
  }
  lease = "5s"
}

results {
  backend = "redis"
  ttl     = "10m"
  redis {
    url = %q
  }
}

route "work" {
  match {
    path_prefix = "/work"
  }
  mode       = "async"
  endpoint   = "app"
  queue      = "jobs"
  idempotent = true
  retry {
    attempts = 10
    initial  = "100ms"
    max      = "1s"
  }
}

route "broken" {
  match {
    path_prefix = "/broken"
  }
  mode       = "async"
  endpoint   = "broken"
  queue      = "jobs"
  idempotent = true
  retry {
    attempts = 3
    initial  = "100ms"
    max      = "200ms"
  }
}

worker {
  embedded    = false
  concurrency = 16
  drain       = "5s"
}

telemetry {
  log_level = "warn"
}
`, listen, appURL, brokenURL, queueURL, sqsURL, redisURL)
}

// brokenApp always answers 500 and counts the deliveries of each job.
type brokenApp struct {
	URL  string
	mu   sync.Mutex
	seen map[string]int
}

func startBrokenApp(t *testing.T) *brokenApp {
	t.Helper()
	b := &brokenApp{seen: map[string]int{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.seen[r.Header.Get("Idempotency-Key")]++
		b.mu.Unlock()
		http.Error(w, "always broken", http.StatusInternalServerError)
	})}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	b.URL = "http://" + l.Addr().String()
	return b
}

func (b *brokenApp) saw(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen[id]
}

// TestSQS runs serve and two standalone workers against an SQS-compatible
// server (goaws, in the test process): 300 async requests with one worker
// killed by SIGKILL while it holds jobs, all completed with the app's
// answer; jobs that always fail end in the dead-letter queue after the
// route's attempts, with the reason; a body above SQS's message limit is
// refused with 413. No process logs the AWS secret key.
func TestSQS(t *testing.T) {
	rs := testredis.Start(t)
	sq := testsqs.Start(t)
	// goaws ignores the visibility timeout a receive asks for and applies
	// the queue's, so the queue is created with the configuration's lease.
	// Its queues outlive a server in goaws's globals: a name per run.
	name := fmt.Sprintf("e2e-jobs-%d", time.Now().UnixNano())
	queueURL := sq.CreateQueues(t, name, 5*time.Second)
	a := startApp(t, 5*time.Millisecond)
	broken := startBrokenApp(t)
	listen := freeAddr(t)
	dir := writeConfig(t, sqsConfig(listen, a.URL, broken.URL, sq.URL, queueURL, rs.URL()))
	base := "http://" + listen
	env := testsqs.Env()

	serve := start(t, "serve", env, "serve", "-c", dir)
	w1addr, w2addr := freeAddr(t), freeAddr(t)
	w1 := start(t, "worker-1", env, "worker", "-c", dir, "--listen", w1addr, "worker-1")
	w2 := start(t, "worker-2", env, "worker", "-c", dir, "--listen", w2addr, "worker-2")
	waitOK(t, serve, base+"/-/readyz")
	waitOK(t, w1, "http://"+w1addr+"/-/readyz")
	waitOK(t, w2, "http://"+w2addr+"/-/readyz")

	killDuringLoad(t, base, a, w1, 300, "/work/s", 90*time.Second)

	t.Run("DeadLetters", func(t *testing.T) {
		const n, attempts = 5, 3
		ids := map[string]bool{}
		for i := range n {
			s, err := submit(base, "/broken/x", fmt.Sprintf(`{"seq":%d}`, i))
			if err != nil || s.code != http.StatusAccepted {
				t.Fatalf("submit to the broken app: %d %v, want 202", s.code, err)
			}
			ids[s.id] = true
		}
		waitStatus(t, base, ids, "failed", 60*time.Second)
		for id := range ids {
			if got := broken.saw(id); got != attempts {
				t.Errorf("the broken app saw job %s %d times, want the route's %d attempts", id, got, attempts)
			}
		}
		dlq, err := sq.Client().GetQueueUrl(context.Background(), &awssqs.GetQueueUrlInput{QueueName: aws.String(name + "-dlq")})
		if err != nil {
			t.Fatal(err)
		}
		wantReason := fmt.Sprintf("upstream answered 500 Internal Server Error (gave up after %d attempts)", attempts)
		for id, dl := range receiveDeadLetters(t, sq.Client(), aws.ToString(dlq.QueueUrl), n) {
			if !ids[id] {
				t.Errorf("the dead-letter queue holds job %s, which was not sent to the broken app", id)
				continue
			}
			delete(ids, id)
			if dl.reason != wantReason || dl.attempts != fmt.Sprint(attempts) {
				t.Errorf("dead letter of %s: reason %q, attempts %q; want %q, %d", id, dl.reason, dl.attempts, wantReason, attempts)
			}
		}
		if len(ids) > 0 {
			t.Errorf("%d failed jobs are not in the dead-letter queue", len(ids))
		}
	})

	t.Run("JobsTooling", func(t *testing.T) {
		// The dead letters of the subtest above, seen and sent back by
		// `openhqm jobs`; the app still fails them, so they come back.
		stats := func() []byte {
			code, out, errs := jobsCmdEnv(t, env, dir, "stats", "--format", "json")
			if code != 0 {
				t.Fatalf("jobs stats: exit %d\n%s", code, errs)
			}
			return []byte(out)
		}
		if q := waitDeadLetters(t, stats, 5, 10*time.Second); q.Backend != "sqs" {
			t.Fatalf("stats: %+v, want backend sqs", q)
		}
		var dead []string
		for deadline := time.Now().Add(15 * time.Second); len(dead) < 5 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			var list struct {
				Jobs []struct {
					ID, State, Route string
				} `json:"jobs"`
			}
			code, out, errs := jobsCmdEnv(t, env, dir, "ls", "--state", "dead", "--format", "json")
			if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
				t.Fatalf("jobs ls: exit %d\n%s%s", code, out, errs)
			}
			dead = dead[:0]
			for _, j := range list.Jobs {
				if j.Route == "broken" {
					dead = append(dead, j.ID)
				}
			}
		}
		if len(dead) != 5 {
			t.Fatalf("jobs ls --state dead: %d jobs of route broken, want 5", len(dead))
		}
		code, out, errs := jobsCmdEnv(t, env, dir, "redrive", "--queue", "jobs", "--all", "--route", "broken")
		if code != 0 || !strings.HasPrefix(out, "5 ") {
			t.Fatalf("jobs redrive: exit %d\n%s%s", code, out, errs)
		}
		ids := map[string]bool{}
		for _, id := range dead {
			ids[id] = true
		}
		waitStatus(t, base, ids, "failed", 60*time.Second)
		for id := range ids {
			if got := broken.saw(id); got != 6 {
				t.Errorf("after the redrive the broken app saw job %s %d times, want 3 + 3 attempts", id, got)
			}
		}
		waitDeadLetters(t, stats, 5, 10*time.Second)
	})

	t.Run("TooLarge", func(t *testing.T) {
		body := strings.Repeat("x", testsqs.MaxMessageSize+1)
		resp, err := client.Post(base+"/work/big", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(msg), "SQS message limit of 256 KiB") {
			t.Errorf("a body above the SQS limit: %d %q, want 413 naming the limit", resp.StatusCode, msg)
		}
	})

	if code := w2.stop(t, 20*time.Second); code != 0 {
		t.Errorf("worker-2 exited %d after SIGTERM, want 0", code)
	}
	if code := serve.stop(t, 15*time.Second); code != 0 {
		t.Errorf("serve exited %d after SIGTERM, want 0", code)
	}
	for _, p := range []*proc{serve, w1, w2} {
		if strings.Contains(p.output(), testsqs.SecretKey) {
			t.Errorf("%s logged the AWS secret access key", p.name)
		}
	}
}

// waitStatus polls every id until all have the status, or fails the test
// after within.
func waitStatus(t *testing.T, base string, ids map[string]bool, want string, within time.Duration) {
	t.Helper()
	left := map[string]bool{}
	for id := range ids {
		left[id] = true
	}
	for deadline := time.Now().Add(within); len(left) > 0 && time.Now().Before(deadline); {
		for id := range left {
			if st, err := status(base, id); err == nil && st == want {
				delete(left, id)
			}
		}
		if len(left) > 0 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if len(left) > 0 {
		t.Fatalf("%d of %d jobs not %s within %v", len(left), len(ids), want, within)
	}
}

type deadLetter struct{ reason, attempts string }

// receiveDeadLetters reads n messages of the dead-letter queue through the
// SDK and returns them by job id: a body is the base64 of the job's wire
// encoding, the reason and attempts are message attributes.
func receiveDeadLetters(t *testing.T, c *awssqs.Client, url string, n int) map[string]deadLetter {
	t.Helper()
	out := map[string]deadLetter{}
	for deadline := time.Now().Add(10 * time.Second); len(out) < n && time.Now().Before(deadline); {
		res, err := c.ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range res.Messages {
			raw, err := base64.StdEncoding.DecodeString(aws.ToString(m.Body))
			if err != nil {
				t.Fatalf("dead letter %s: body is not base64: %v", aws.ToString(m.MessageId), err)
			}
			job, err := wire.DecodeJob(raw)
			if err != nil {
				t.Fatalf("dead letter %s: body is not a job: %v", aws.ToString(m.MessageId), err)
			}
			out[job.ID] = deadLetter{
				reason:   aws.ToString(m.MessageAttributes["openhqm-reason"].StringValue),
				attempts: aws.ToString(m.MessageAttributes["openhqm-attempts"].StringValue),
			}
		}
	}
	if len(out) != n {
		t.Fatalf("the dead-letter queue holds %d jobs, want %d", len(out), n)
	}
	return out
}
