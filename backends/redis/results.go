package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/internal/batch"
)

// ResultsOptions configures a Results store.
type ResultsOptions struct {
	URL string // redis://host:port/db; ignored when Client, Sentinel or Cluster is set
	// Sentinel, or Cluster, replaces URL (see Options).
	Sentinel *Sentinel
	Cluster  *Cluster
	TLS      *tls.Config             // nil: plaintext, unless URL is rediss://
	Client   goredis.UniversalClient // shared client; the caller closes it
	// Replicas: after writing records, WAIT for this many replicas (see
	// Replicas); a write they do not confirm in time answers an error
	// wrapping ErrUnavailable.
	Replicas Replicas
	// Prefix of every key; default "openhqm:result:". Keys: Prefix+id (the
	// record), Prefix+"tomb:"+id (the tombstone), Prefix+"idem:"+key.
	Prefix string
	// Tombstone is how long an expired id answers ErrExpired before it
	// answers ErrNotFound, counted from expiry; default 24h.
	Tombstone time.Duration
	// PendingTTL keeps pending and processing records this long after their
	// last update (a safety net against leaks, far longer than any backlog
	// should last); default 7 days. They never expire on the short result TTL.
	PendingTTL time.Duration
	// Batch groups concurrent Create and Update calls into one round trip;
	// the zero value enables it with defaults (see BatchOptions).
	Batch BatchOptions
}

// ResultsLayout is where a Results store keeps its records and how long they
// live: what a Queue needs to write records itself (Options.Results). The
// zero value is the defaults of ResultsOptions.
type ResultsLayout struct {
	Prefix     string        // ResultsOptions.Prefix; default "openhqm:result:"
	PendingTTL time.Duration // ResultsOptions.PendingTTL; default 7 days
	Tombstone  time.Duration // ResultsOptions.Tombstone; default 24h
	Replicas   Replicas      // ResultsOptions.Replicas

	tagged bool // on a cluster: each record's keys are hash-tagged by its id (keys.go)
}

func (l ResultsLayout) withDefaults() ResultsLayout {
	l.Replicas = l.Replicas.withDefaults()
	if l.Prefix == "" {
		l.Prefix = "openhqm:result:"
	}
	if l.PendingTTL <= 0 {
		l.PendingTTL = 7 * 24 * time.Hour
	}
	if l.Tombstone <= 0 {
		l.Tombstone = 24 * time.Hour
	}
	return l
}

// key is the record of job id, tomb its tombstone.
func (l ResultsLayout) key(id string) string  { return recordKey(l.Prefix, id, l.tagged) }
func (l ResultsLayout) tomb(id string) string { return tombKey(l.Prefix, id, l.tagged) }

// write is how r is stored: its value, and how long it and its tombstone
// live. A finished record expires ttl after r.CompletedAt (now when zero).
// The value comes from the value pool: give it back with putValue once the
// write was sent.
func (l ResultsLayout) write(r *backends.Result, ttl time.Duration) recordWrite {
	v := appendValue(getValue(), r)
	w := recordWrite{key: l.key(r.ID), tomb: l.tomb(r.ID), value: v, expire: l.PendingTTL.Milliseconds()}
	if finished(r.Status) {
		done := r.CompletedAt
		if done.IsZero() {
			done = time.Now()
		}
		w.final = true
		// At least 1: SET refuses a PXAT of 0, and any past time expires the record at once.
		w.expire, w.tombAt = max(done.Add(ttl).UnixMilli(), 1), done.Add(ttl+l.Tombstone).UnixMilli()
	}
	return w
}

// finished reports whether a record in status st expires on the result TTL
// (with a tombstone) rather than on PendingTTL.
func finished(st backends.Status) bool {
	return st.Final()
}

func (s *Results) key(id string) string  { return s.layout.key(id) }
func (s *Results) tomb(id string) string { return s.layout.tomb(id) }

// Results is a result store with one string key per job (see recordValue)
// and a tombstone key per finished job. The tombstone is written first, with
// SET NX, when a record becomes completed or failed: it both answers
// ErrExpired once the record has expired and marks the record as final, so
// that a write never has to read the record it replaces. Records written by
// earlier releases (one hash per job, fields r and b) are still read, and
// replaced whole by the next write. All methods are safe for concurrent use;
// concurrent Create and Update calls share round trips (ResultsOptions.Batch).
// Returned Results own their memory, and the store keeps no reference to the
// Results it is given.
type Results struct {
	rdb       goredis.UniversalClient
	ownClient bool
	opts      ResultsOptions
	layout    ResultsLayout
	writes    *batch.Batcher[settleItem] // nil when batching is disabled
	primaries primaries                  // on a cluster: those that refused writes lately
	closed    atomic.Bool
}

// NewResults connects and returns the store; an unreachable Redis answers an
// error wrapping ErrUnavailable.
func NewResults(ctx context.Context, opts ResultsOptions) (*Results, error) {
	layout := ResultsLayout{Prefix: opts.Prefix, PendingTTL: opts.PendingTTL, Tombstone: opts.Tombstone, Replicas: opts.Replicas}.withDefaults()
	opts.Prefix, opts.PendingTTL, opts.Tombstone, opts.Replicas = layout.Prefix, layout.PendingTTL, layout.Tombstone, layout.Replicas
	rdb, own, err := connect(Conn{URL: opts.URL, Sentinel: opts.Sentinel, Cluster: opts.Cluster, TLS: opts.TLS}, opts.Client)
	if err != nil {
		return nil, err
	}
	layout.tagged = isCluster(rdb)
	if err := rdb.Ping(ctx).Err(); err != nil {
		if own {
			rdb.Close()
		}
		return nil, fmt.Errorf("redis results: %w", classify(err))
	}
	s := &Results{rdb: rdb, ownClient: own, opts: opts, layout: layout}
	if !opts.Batch.Disabled {
		s.writes = batch.New(opts.Batch.options(), settleItem.size, s.send)
	}
	return s, nil
}

// Layout returns the store's key prefix, retention and durability, for a
// Queue that writes records itself (Options.Results).
func (s *Results) Layout() ResultsLayout { return s.layout }

// sameRedis reports whether s talks to the Redis that a client built from
// c, or the shared client, talks to.
func (s *Results) sameRedis(c Conn, client goredis.UniversalClient) bool {
	if client != nil || s.opts.Client != nil {
		return client == s.opts.Client
	}
	switch {
	case c.Cluster != nil || s.opts.Cluster != nil:
		return false // records and streams never share a slot there
	case c.Sentinel != nil:
		return s.opts.Sentinel != nil && reflect.DeepEqual(*c.Sentinel, *s.opts.Sentinel)
	}
	return c.URL != "" && c.URL == s.opts.URL && s.opts.Sentinel == nil
}

// Create records a new pending job (kept PendingTTL). ErrFinished when the
// job's record is already completed or failed.
func (s *Results) Create(ctx context.Context, r *backends.Result) error {
	return s.put(ctx, "create", r, 0)
}

// Update replaces the record atomically, unless it is completed or failed
// (ErrFinished). A completed or failed record expires ttl after
// r.CompletedAt, and its tombstone Tombstone later.
func (s *Results) Update(ctx context.Context, r *backends.Result, ttl time.Duration) error {
	return s.put(ctx, "update", r, ttl)
}

func (s *Results) put(ctx context.Context, op string, r *backends.Result, ttl time.Duration) error {
	if s.closed.Load() {
		return fmt.Errorf("redis results: %s %s: %w", op, r.ID, backends.ErrClosed)
	}
	w := s.layout.write(r, ttl)
	it := settleItem{rec: w}
	var err error
	if s.writes != nil {
		err = s.writes.Do(ctx, it)
	} else {
		err = batch.Send(ctx, s.send, it)
	}
	if ctx.Err() == nil {
		// Sent, or refused before sending: nothing refers to the value.
		putValue(w.value)
	}
	if err != nil {
		return fmt.Errorf("redis results: %s %s: %w", op, r.ID, err)
	}
	return nil
}

func (s *Results) send(ctx context.Context, reqs []*batch.Call[settleItem]) {
	if s.layout.tagged {
		settleEach(ctx, s.rdb, s.layout.Replicas, &s.primaries, reqs)
		return
	}
	settle(ctx, s.rdb, s.layout.Replicas, "", "", reqs)
}

// Get returns the record, ErrNotFound, or ErrExpired, in one round trip (two
// for a record written by an earlier release).
func (s *Results) Get(ctx context.Context, id string) (*backends.Result, error) {
	var rec *goredis.StringCmd
	var tomb *goredis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		rec = p.Get(ctx, s.key(id))
		tomb = p.Exists(ctx, s.tomb(id))
		return nil
	})
	switch {
	case isWrongType(rec.Err()):
		return s.getHash(ctx, id)
	case errors.Is(rec.Err(), goredis.Nil):
		if tomb.Err() != nil {
			return nil, fmt.Errorf("redis results: get %s: %w", id, classify(tomb.Err()))
		}
		if tomb.Val() > 0 {
			return nil, fmt.Errorf("redis results: %s: %w", id, backends.ErrExpired)
		}
		return nil, fmt.Errorf("redis results: %s: %w", id, backends.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("redis results: get %s: %w", id, classify(err))
	}
	b, _ := rec.Bytes()
	r, err := decodeValue(id, b)
	if err != nil {
		return nil, fmt.Errorf("redis results: get %s: %w", id, err)
	}
	return r, nil
}

// getHash reads a record in the layout of earlier releases: a hash whose
// field r holds the JSON and field b the body.
func (s *Results) getHash(ctx context.Context, id string) (*backends.Result, error) {
	vals, err := s.rdb.HMGet(ctx, s.key(id), recordMeta, recordBody).Result()
	if err != nil {
		return nil, fmt.Errorf("redis results: get %s: %w", id, classify(err))
	}
	meta, _ := vals[0].(string)
	if meta == "" {
		return nil, fmt.Errorf("redis results: %s: %w", id, backends.ErrNotFound)
	}
	body, _ := vals[1].(string)
	r, err := decodeHash(id, []byte(meta), []byte(body))
	if err != nil {
		return nil, fmt.Errorf("redis results: get %s: %w", id, err)
	}
	return r, nil
}

// Delete removes a record and its tombstone.
func (s *Results) Delete(ctx context.Context, id string) error {
	if err := s.rdb.Del(ctx, s.key(id), s.tomb(id)).Err(); err != nil {
		return fmt.Errorf("redis results: delete %s: %w", id, classify(err))
	}
	return nil
}

// Reserve binds key to id and digest for ttl with one SET NX GET; it returns
// the binding in force.
func (s *Results) Reserve(ctx context.Context, key, id, digest string, ttl time.Duration) (string, string, error) {
	old, err := s.rdb.SetArgs(ctx, idemKey(s.opts.Prefix, key), id+"\n"+digest, goredis.SetArgs{Mode: "NX", Get: true, TTL: ttl}).Result()
	if errors.Is(err, goredis.Nil) {
		return id, digest, nil
	}
	if err != nil {
		return "", "", fmt.Errorf("redis results: reserve: %w", classify(err))
	}
	bid, bdigest, _ := strings.Cut(old, "\n")
	return bid, bdigest, nil
}

// Close makes further writes answer ErrClosed, sends those already queued,
// and closes the client if NewResults created it.
func (s *Results) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.writes != nil {
		s.writes.Close()
	}
	if s.ownClient {
		return s.rdb.Close()
	}
	return nil
}
