package process

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"sync"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/kafka"
	"github.com/openhqm/openhqm/backends/memory"
	redisbackend "github.com/openhqm/openhqm/backends/redis"
	"github.com/openhqm/openhqm/backends/sqs"
	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/router"
	"github.com/openhqm/openhqm/workerpool"
)

// The Redis queue writes a submit's pending record with the job in one round
// trip when the result store shares its server; the router takes that path
// when the queue implements router.ResultEnqueuer.
var _ router.ResultEnqueuer = (*redisbackend.ResultsQueue)(nil)

// The same queue stores a worker's outcome with its ack; the worker pool
// takes that path when the queue implements workerpool.ResultAcker and
// writes the records of the generation's result store.
var _ workerpool.ResultAcker = (*redisbackend.ResultsQueue)(nil)

// handle is one open backend client, shared by every generation (and every
// worker consumer) that uses it, and closed when the last of them lets go.
type handle struct {
	what string // "queue NAME" or "results", for logs
	c    io.Closer
	refs int // guarded by backendSet.mu
}

// queueHandle is a queue client with the configuration it was opened with,
// so that a reload can tell whether it may be reused.
type queueHandle struct {
	handle
	cfg config.Queue // Range cleared: moving a block in the file changes nothing
	// layout is the results key prefix when the queue writes pending
	// result records itself (see resultsLayout); "" when it does not.
	layout string
	q      backends.Queue
}

// resultsHandle is the result store with the configuration it was opened
// with.
type resultsHandle struct {
	handle
	cfg config.Results
	s   backends.ResultStore
}

// backendSet opens queue clients and result stores, reuses those whose
// settings did not change, and closes each once nothing uses it. prepare
// runs on the reload path only (one at a time); release may run on any
// goroutine.
type backendSet struct {
	log      *slog.Logger
	consumer string // this process's stable name: Kafka client id

	mu      sync.Mutex
	queues  map[string]*queueHandle // the newest generation's, for reuse
	results *resultsHandle
	closing sync.WaitGroup // Close calls in progress
}

// plan is the backends of one generation being built.
type plan struct {
	queues       map[string]*queueHandle
	results      *resultsHandle
	opened       []*handle // created for this plan: closed if it is abandoned
	keptSettings []string  // memory backends whose changed settings wait for a restart
}

// prepare opens what cfg needs and is not open yet. On error everything it
// opened is closed and nothing else changes. The plan takes no reference
// until commit.
func (b *backendSet) prepare(ctx context.Context, cfg *config.Config) (*plan, error) {
	b.mu.Lock()
	oldQueues, oldResults := b.queues, b.results
	b.mu.Unlock()
	p := &plan{queues: make(map[string]*queueHandle, len(cfg.Queues))}
	fail := func(err error) (*plan, error) {
		b.abandon(p)
		return nil, err
	}
	for name, qc := range cfg.Queues {
		want := *qc
		want.Range = (config.Queue{}).Range
		layout := resultsLayout(&want, &cfg.Results)
		old := oldQueues[name]
		switch {
		case old != nil && reflect.DeepEqual(old.cfg, want) && old.layout == layoutKey(layout):
			p.queues[name] = old
			continue
		case old != nil && old.cfg.Backend == config.BackendMemory && want.Backend == config.BackendMemory:
			// A new memory queue would drop the jobs of the old one: keep it.
			p.queues[name] = old
			p.keptSettings = append(p.keptSettings, "queue "+name)
			continue
		}
		q, err := openQueue(ctx, &want, layout, b.consumer, b.log)
		if err != nil {
			return fail(fmt.Errorf("queue %q: %w", name, err))
		}
		h := &queueHandle{handle: handle{what: "queue " + name, c: q}, cfg: want, layout: layoutKey(layout), q: q}
		p.queues[name] = h
		p.opened = append(p.opened, &h.handle)
	}
	for name, old := range oldQueues {
		if p.queues[name] == nil && old.cfg.Backend == config.BackendMemory {
			if st, err := old.q.Stats(ctx); err == nil && st.Depth > st.Pending {
				b.log.Warn("a removed memory queue still holds jobs that were not started; they are dropped with it",
					"queue", name, "jobs", st.Depth-st.Pending)
			}
		}
	}

	want := cfg.Results
	switch old := oldResults; {
	case old != nil && reflect.DeepEqual(old.cfg, want):
		p.results = old
	case old != nil && old.cfg.Backend == config.BackendMemory && want.Backend == config.BackendMemory:
		// The TTL is read per job; the store keeps its records.
		p.results = old
		if old.cfg.MaxEntries != want.MaxEntries {
			p.keptSettings = append(p.keptSettings, "results")
		}
	default:
		s, err := openResults(ctx, &want)
		if err != nil {
			return fail(fmt.Errorf("results: %w", err))
		}
		p.results = &resultsHandle{handle: handle{what: "results", c: s}, cfg: want, s: s}
		p.opened = append(p.opened, &p.results.handle)
	}
	return p, nil
}

// abandon closes what prepare opened for a plan that will not be published.
func (b *backendSet) abandon(p *plan) {
	for _, h := range p.opened {
		if err := h.c.Close(); err != nil {
			b.log.Warn("closing a backend of a configuration that was not applied", "backend", h.what, "err", err)
		}
	}
}

// commit makes p the set that later plans reuse from, and takes the new
// generation's reference on each of its backends.
func (b *backendSet) commit(p *plan) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, h := range p.queues {
		h.refs++
	}
	p.results.refs++
	b.queues, b.results = p.queues, p.results
}

// acquire takes one more reference on h (a worker consumer on a queue).
func (b *backendSet) acquire(h *handle) {
	b.mu.Lock()
	h.refs++
	b.mu.Unlock()
}

// release drops one reference on h and closes it, in the background, when it
// was the last.
func (b *backendSet) release(h *handle) {
	b.mu.Lock()
	h.refs--
	last := h.refs == 0
	if h.refs < 0 {
		b.mu.Unlock()
		panic("process: backend " + h.what + " released more often than acquired")
	}
	b.mu.Unlock()
	if !last {
		return
	}
	b.closing.Go(func() {
		if err := h.c.Close(); err != nil {
			b.log.Warn("closing a backend no longer used", "backend", h.what, "err", err)
		} else {
			b.log.Debug("closed a backend no longer used", "backend", h.what)
		}
	})
}

// resultsLayout is the key layout of the result store when a Redis queue and
// the Redis result store share one server: the queue then writes a job's
// pending record in the same round trip as the job (one batched script per
// group of submits instead of two round trips each). nil otherwise.
func resultsLayout(qc *config.Queue, rc *config.Results) *redisbackend.ResultsLayout {
	if qc.Backend != config.BackendRedis || rc.Backend != config.BackendRedis || !sameRedis(qc.Redis.RedisConn, resultsConn(rc)) {
		return nil
	}
	return &redisbackend.ResultsLayout{Prefix: resultsPrefix(rc), Replicas: redisbackend.Replicas{N: resultsConn(rc).MinReplicas}}
}

// resultsConn is the result store's Redis address (a configuration built
// in code may set only RedisURL).
func resultsConn(rc *config.Results) config.RedisConn {
	if rc.Redis != nil {
		return *rc.Redis
	}
	return config.RedisConn{URL: rc.RedisURL}
}

// sameRedis reports whether a and b name the same Redis server (a cluster
// never counts: a stream and a record never share a slot there).
func sameRedis(a, b config.RedisConn) bool {
	a.MinReplicas, b.MinReplicas = 0, 0
	return a.Cluster == nil && (a.URL != "" || a.Sentinel != nil) && reflect.DeepEqual(a, b)
}

func layoutKey(l *redisbackend.ResultsLayout) string {
	if l == nil {
		return ""
	}
	return fmt.Sprintf("%s/%d", l.Prefix, l.Replicas.N)
}

// redisConn maps the configuration's Redis address onto the backend's.
func redisConn(c *config.RedisConn) (redisbackend.Conn, error) {
	conn := redisbackend.Conn{URL: c.URL}
	if s := c.Sentinel; s != nil {
		conn.Sentinel = &redisbackend.Sentinel{MasterName: s.MasterName, Addrs: s.Addrs, Username: s.Username, Password: s.Password}
	}
	if cl := c.Cluster; cl != nil {
		conn.Cluster = &redisbackend.Cluster{Addrs: cl.Addrs, Username: cl.Username, Password: cl.Password}
	}
	if c.TLS != nil {
		tc, err := tlsConfig(c.TLS)
		if err != nil {
			return conn, err
		}
		conn.TLS = tc
	}
	return conn, nil
}

// resultsPrefix is the key prefix of result records in Redis.
func resultsPrefix(rc *config.Results) string { return rc.Prefix + "result:" }

func openQueue(ctx context.Context, qc *config.Queue, layout *redisbackend.ResultsLayout, consumer string, log *slog.Logger) (backends.Queue, error) {
	log = log.With("queue", qc.Name)
	switch qc.Backend {
	case config.BackendMemory:
		return memory.NewQueue(memory.QueueOptions{
			Name:          qc.Name,
			MaxDepth:      int(qc.MaxDepth),
			Lease:         qc.Lease,
			DeadLetterMax: int(qc.DeadLetterMax),
		})
	case config.BackendRedis:
		conn, err := redisConn(&qc.Redis.RedisConn)
		if err != nil {
			return nil, err
		}
		q, err := redisbackend.New(ctx, redisbackend.Options{
			URL:           conn.URL,
			Sentinel:      conn.Sentinel,
			Cluster:       conn.Cluster,
			TLS:           conn.TLS,
			Stream:        qc.Redis.Stream,
			Group:         qc.Redis.Group,
			Shards:        qc.Redis.Shards,
			KeyedShards:   qc.Redis.KeyHeader != "",
			Replicas:      redisbackend.Replicas{N: qc.Redis.MinReplicas},
			DeadLetter:    qc.DeadLetter,
			DeadLetterMax: int(qc.DeadLetterMax),
			MaxDepth:      int(qc.MaxDepth),
			Lease:         qc.Lease,
			Results:       layout,
			Logger:        log,
		})
		if err != nil {
			return nil, err
		}
		if rq, ok := q.WithResults(); ok {
			return rq, nil // the router takes its one-round-trip submit
		}
		return q, nil
	case config.BackendKafka:
		k := qc.Kafka
		opts := kafka.Options{
			Name:            qc.Name,
			Brokers:         k.Brokers,
			Topic:           k.Topic,
			Group:           k.Group,
			RetryTopic:      k.RetryTopic,
			DeadLetterTopic: qc.DeadLetter,
			Version:         k.Version,
			ClientID:        consumer,
			Lease:           qc.Lease,
			MaxDepth:        qc.MaxDepth,
			Logger:          log,
		}
		if k.SASL != nil {
			opts.SASLMechanism, opts.SASLUser, opts.SASLPassword = k.SASL.Mechanism, k.SASL.Username, k.SASL.Password
		}
		if k.TLS != nil {
			tc, err := tlsConfig(k.TLS)
			if err != nil {
				return nil, err
			}
			opts.TLS = tc
		}
		return kafka.New(opts)
	case config.BackendSQS:
		// Credentials come from the SDK's default chain, never from the
		// configuration, so nothing here can log them.
		s := qc.SQS
		return sqs.New(ctx, sqs.Options{
			Name:       qc.Name,
			QueueURL:   s.QueueURL,
			Region:     s.Region,
			Endpoint:   s.Endpoint,
			Protocol:   sqs.Protocol(s.Protocol),
			DeadLetter: qc.DeadLetter,
			Lease:      qc.Lease,
			MaxDepth:   qc.MaxDepth,
			Logger:     log,
		})
	}
	return nil, fmt.Errorf("unknown queue backend %q", qc.Backend)
}

func openResults(ctx context.Context, rc *config.Results) (backends.ResultStore, error) {
	switch rc.Backend {
	case config.BackendMemory:
		return memory.NewResults(memory.ResultsOptions{MaxEntries: rc.MaxEntries})
	case config.BackendRedis:
		c := resultsConn(rc)
		conn, err := redisConn(&c)
		if err != nil {
			return nil, err
		}
		return redisbackend.NewResults(ctx, redisbackend.ResultsOptions{
			URL: conn.URL, Sentinel: conn.Sentinel, Cluster: conn.Cluster, TLS: conn.TLS,
			Prefix: resultsPrefix(rc), Replicas: redisbackend.Replicas{N: c.MinReplicas},
		})
	}
	return nil, fmt.Errorf("unknown results backend %q", rc.Backend)
}

func tlsConfig(t *config.TLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("tls ca_file: no certificate found")
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
