package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/kafka"
	"github.com/openhqm/openhqm/backends/memory"
	redisbackend "github.com/openhqm/openhqm/backends/redis"
	"github.com/openhqm/openhqm/config"
)

// openQueue is a queue client together with the configuration it was opened
// with, so that a reload can tell whether it may be reused.
type openQueue struct {
	cfg config.Queue // Range cleared: moving a block in the file changes nothing
	// results is where the queue writes pending result records itself (see
	// resultsLayout); "" when it does not.
	results string
	q       backends.Queue
}

// openResults is the result store with the configuration it was opened with.
type openResults struct {
	cfg config.Results
	s   backends.ResultStore
}

// backendSet opens queue clients and the result store for a configuration,
// reusing those whose settings did not change. It is used by the reload
// loop only (one goroutine at a time).
type backendSet struct {
	log      *slog.Logger
	consumer string // this process's stable name: Kafka client id
	queues   map[string]*openQueue
	results  *openResults
}

// plan is the backends of one generation: what it uses, and what only the
// previous one used (to be closed once nothing of the old generation runs).
type plan struct {
	queues       map[string]*openQueue
	results      *openResults
	opened       []closer // created for this plan: closed if the plan is abandoned
	retired      []closer // used only by the previous generation
	keptSettings []string // memory backends whose changed settings wait for a restart
}

type closer interface{ Close() error }

// prepare opens what cfg needs and is not open yet. On error everything it
// opened is closed and the running backends are untouched.
func (b *backendSet) prepare(ctx context.Context, cfg *config.Config) (*plan, error) {
	p := &plan{queues: make(map[string]*openQueue, len(cfg.Queues))}
	fail := func(err error) (*plan, error) {
		for _, c := range p.opened {
			c.Close()
		}
		return nil, err
	}
	for name, qc := range cfg.Queues {
		want := *qc
		want.Range = (config.Queue{}).Range
		layout := resultsLayout(&want, &cfg.Results)
		old := b.queues[name]
		switch {
		case old != nil && reflect.DeepEqual(old.cfg, want) && old.results == layoutKey(layout):
			p.queues[name] = old
			continue
		case old != nil && old.cfg.Backend == config.BackendMemory && want.Backend == config.BackendMemory:
			// A new memory queue would drop the jobs of the old one: keep it.
			p.queues[name] = old
			p.keptSettings = append(p.keptSettings, "queue "+name)
			continue
		}
		q, err := openQueueBackend(ctx, &want, layout, b.consumer, b.log)
		if err != nil {
			return fail(fmt.Errorf("queue %q: %w", name, err))
		}
		oq := &openQueue{cfg: want, results: layoutKey(layout), q: q}
		p.queues[name] = oq
		p.opened = append(p.opened, q)
	}
	for name, old := range b.queues {
		if p.queues[name] == old {
			continue
		}
		p.retired = append(p.retired, old.q)
		if old.cfg.Backend == config.BackendMemory {
			if st, err := old.q.Stats(ctx); err == nil && st.Depth > st.Pending {
				b.log.Warn("a removed memory queue still holds jobs that were not started; they are dropped with it",
					"queue", name, "jobs", st.Depth-st.Pending)
			}
		}
	}

	want := cfg.Results
	switch old := b.results; {
	case old != nil && reflect.DeepEqual(old.cfg, want):
		p.results = old
	case old != nil && old.cfg.Backend == config.BackendMemory && want.Backend == config.BackendMemory:
		p.results = &openResults{cfg: want, s: old.s} // the TTL is read per job; the store keeps its records
		if old.cfg.MaxEntries != want.MaxEntries {
			p.keptSettings = append(p.keptSettings, "results")
		}
	default:
		s, err := openResultStore(ctx, &want)
		if err != nil {
			return fail(fmt.Errorf("results: %w", err))
		}
		p.results = &openResults{cfg: want, s: s}
		p.opened = append(p.opened, s)
		if old != nil {
			p.retired = append(p.retired, old.s)
		}
	}
	return p, nil
}

// commit makes p the running set.
func (b *backendSet) commit(p *plan) {
	b.queues = p.queues
	b.results = p.results
}

// closeAll closes every running backend (at shutdown, after the workers stopped).
func (b *backendSet) closeAll() {
	for name, oq := range b.queues {
		if err := oq.q.Close(); err != nil {
			b.log.Warn("closing queue", "queue", name, "err", err)
		}
	}
	if b.results != nil {
		if err := b.results.s.Close(); err != nil {
			b.log.Warn("closing result store", "err", err)
		}
	}
}

// resultsLayout is the key layout of the result store when a Redis queue and
// the Redis result store share one server: the queue then writes a job's
// pending record in the same round trip as the job (one batched script per
// group of submits instead of two round trips each). nil otherwise.
func resultsLayout(qc *config.Queue, rc *config.Results) *redisbackend.ResultsLayout {
	if qc.Backend != config.BackendRedis || rc.Backend != config.BackendRedis || qc.Redis.URL != rc.RedisURL {
		return nil
	}
	return &redisbackend.ResultsLayout{Prefix: resultsPrefix(rc)}
}

func layoutKey(l *redisbackend.ResultsLayout) string {
	if l == nil {
		return ""
	}
	return l.Prefix
}

// resultsPrefix is the key prefix of result records in Redis.
func resultsPrefix(rc *config.Results) string { return rc.Prefix + "result:" }

func openQueueBackend(ctx context.Context, qc *config.Queue, layout *redisbackend.ResultsLayout, consumer string, log *slog.Logger) (backends.Queue, error) {
	log = log.With("queue", qc.Name)
	switch qc.Backend {
	case config.BackendMemory:
		q, err := memory.NewQueue(memory.QueueOptions{
			Name:          qc.Name,
			MaxDepth:      int(qc.MaxDepth),
			Lease:         qc.Lease,
			DeadLetterMax: int(qc.DeadLetterMax),
		})
		if err != nil {
			return nil, err
		}
		return q, nil
	case config.BackendRedis:
		q, err := redisbackend.New(ctx, redisbackend.Options{
			URL:           qc.Redis.URL,
			Stream:        qc.Redis.Stream,
			Group:         qc.Redis.Group,
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
		q, err := kafka.New(opts)
		if err != nil {
			return nil, err
		}
		return q, nil
	}
	return nil, fmt.Errorf("unknown queue backend %q", qc.Backend)
}

func openResultStore(ctx context.Context, rc *config.Results) (backends.ResultStore, error) {
	switch rc.Backend {
	case config.BackendMemory:
		return memory.NewResults(memory.ResultsOptions{MaxEntries: rc.MaxEntries})
	case config.BackendRedis:
		return redisbackend.NewResults(ctx, redisbackend.ResultsOptions{URL: rc.RedisURL, Prefix: resultsPrefix(rc)})
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
