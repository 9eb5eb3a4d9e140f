package process

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/sqs"
	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/testredis"
	"github.com/openhqm/openhqm/workerpool"
)

// A Redis queue whose server also holds the results stores each outcome
// with its ack: the worker pool takes that path when the queue it consumes
// writes the records the generation's store reads.
func TestRedisQueueWritesTheStoreItShares(t *testing.T) {
	shared, other := testredis.Start(t), testredis.Start(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rc := config.Results{Backend: config.BackendRedis, RedisURL: shared.URL(), Prefix: "openhqm:", TTL: time.Hour}
	store, err := openResults(ctx, &rc)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, tt := range []struct {
		name string
		url  string
		want bool
	}{
		{"same server", shared.URL(), true},
		{"another server", other.URL(), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			qc := &config.Queue{Name: "jobs", Backend: config.BackendRedis, Lease: time.Minute,
				Redis: &config.RedisQueue{RedisConn: config.RedisConn{URL: tt.url}, Stream: "s", Group: "g"}}
			q, err := openQueue(ctx, qc, resultsLayout(qc, &rc), "w", log)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			ra, ok := q.(workerpool.ResultAcker)
			if got := ok && ra.WritesResults(store); got != tt.want {
				t.Errorf("the queue stores outcomes with its acks: %v, want %v", got, tt.want)
			}
		})
	}
}

// sqsConfig is a configuration with one SQS queue. Opening it makes no
// request, so no server is needed.
func sqsConfig(t *testing.T, protocol, route string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	text := fmt.Sprintf(`
endpoint "app" {
  url = "http://127.0.0.1:1"
}
queue "jobs" {
  backend = "sqs"
  sqs {
    queue_url = "http://127.0.0.1:1/100010001000/jobs"
    region    = "us-east-1"
    endpoint  = "http://127.0.0.1:1"
    protocol  = %q
  }
}
route %q {
  match {
    path_prefix = "/"
  }
  mode     = "async"
  endpoint = "app"
  queue    = "jobs"
}
`, protocol, route)
	if err := os.WriteFile(filepath.Join(dir, "openhqm.hcl"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, diags, err := config.Load([]string{dir}, config.Options{Mode: config.ModeRuntime})
	if err != nil || diags.HasErrors() {
		t.Fatalf("load: %v %v", err, diags)
	}
	return cfg
}

// An SQS queue client is opened with its settings, kept by a reload that
// leaves them unchanged, and opened again when one changes.
func TestSQSQueueReusedWhileUnchanged(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	b := &backendSet{log: slog.New(slog.DiscardHandler), consumer: "test"}
	ctx := context.Background()
	apply := func(cfg *config.Config) *queueHandle {
		t.Helper()
		p, err := b.prepare(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		b.commit(p)
		h := p.queues["jobs"]
		t.Cleanup(func() { h.q.Close() })
		return h
	}
	first := apply(sqsConfig(t, "query", "a"))
	if _, ok := first.q.(*sqs.Queue); !ok {
		t.Fatalf("queue client is a %T, want *sqs.Queue", first.q)
	}
	if again := apply(sqsConfig(t, "query", "b")); again != first {
		t.Error("a reload that changed only a route opened the SQS queue again")
	}
	if changed := apply(sqsConfig(t, "json", "b")); changed == first {
		t.Error("a reload that changed the protocol kept the old SQS client")
	}
}

// A queue and a result store whose redis blocks name a rediss:// URL and a
// tls block reach a TLS-only port with the CA the block names; without the
// block the server's certificate is refused, so the traffic is really TLS.
func TestRedisTLSFromConfiguration(t *testing.T) {
	srv := testredis.StartTLS(t)
	load := func(t *testing.T, tls string) *config.Config {
		t.Helper()
		dir := t.TempDir()
		hcl := fmt.Sprintf(`server {
  listen      = "127.0.0.1:0"
  admin_token = "t"
}
endpoint "app" {
  url = "http://127.0.0.1:1"
}
queue "jobs" {
  backend = "redis"
  redis {
    url = %[1]q
    %[2]s
  }
}
results {
  backend = "redis"
  redis {
    url = %[1]q
    %[2]s
  }
}
route "jobs" {
  match {
    path_prefix = "/"
  }
  mode     = "async"
  endpoint = "app"
  queue    = "jobs"
}
`, srv.TLSURL(), tls)
		if err := os.WriteFile(filepath.Join(dir, "c.hcl"), []byte(hcl), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := Source{Kind: FromFiles, Paths: []string{dir}}.Load(nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	cfg := load(t, fmt.Sprintf("tls {\n      ca_file = %q\n    }", srv.CAFile))
	store, err := openResults(ctx, &cfg.Results)
	if err != nil {
		t.Fatalf("results over TLS: %v", err)
	}
	defer store.Close()
	qc := cfg.Queues["jobs"]
	q, err := openQueue(ctx, qc, resultsLayout(qc, &cfg.Results), "w", log)
	if err != nil {
		t.Fatalf("queue over TLS: %v", err)
	}
	defer q.Close()
	if err := q.Enqueue(ctx, &backends.Job{ID: "0123456789abcdef0123456789abcdef", Queue: "jobs", Method: "POST", Path: "/"}); err != nil {
		t.Fatalf("enqueue over TLS: %v", err)
	}
	var got []*backends.Delivery
	for deadline := time.Now().Add(5 * time.Second); len(got) == 0 && time.Now().Before(deadline); {
		if got, err = q.Receive(ctx, "w", 1); err != nil {
			t.Fatalf("receive over TLS: %v", err)
		}
	}
	if len(got) != 1 || got[0].Job.ID != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("received %d jobs over TLS, want the one enqueued", len(got))
	}

	plain := load(t, "")
	if q, err := openQueue(ctx, plain.Queues["jobs"], nil, "w", log); err == nil {
		q.Close()
		t.Error("a queue without the server's CA opened; want a certificate error")
	}
}
