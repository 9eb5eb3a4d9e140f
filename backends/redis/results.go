package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/openhqm/openhqm/backends"
)

// ResultsOptions configures a Results store.
type ResultsOptions struct {
	URL    string                  // redis://host:port/db; ignored when Client is set
	Client goredis.UniversalClient // shared client; the caller closes it
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
}

// ResultsLayout is where a Results store keeps its records and how long a
// pending one lives: what a Queue needs to write pending records itself
// (Options.Results). The zero value is the defaults of ResultsOptions.
type ResultsLayout struct {
	Prefix     string        // ResultsOptions.Prefix; default "openhqm:result:"
	PendingTTL time.Duration // ResultsOptions.PendingTTL; default 7 days
}

func (l ResultsLayout) withDefaults() ResultsLayout {
	if l.Prefix == "" {
		l.Prefix = "openhqm:result:"
	}
	if l.PendingTTL <= 0 {
		l.PendingTTL = 7 * 24 * time.Hour
	}
	return l
}

// key is the record hash of job id.
func (l ResultsLayout) key(id string) string { return l.Prefix + id }

// Results is a result store with one hash per job: field r holds the status
// and metadata as JSON, field b the response body as raw bytes. Each Update is
// one MULTI/EXEC, so a reader never sees a completed status without its
// response. All methods are safe for concurrent use; returned Results own
// their memory.
type Results struct {
	rdb       goredis.UniversalClient
	ownClient bool
	opts      ResultsOptions
	layout    ResultsLayout
}

// NewResults connects and returns the store; an unreachable Redis answers an
// error wrapping ErrUnavailable.
func NewResults(ctx context.Context, opts ResultsOptions) (*Results, error) {
	layout := ResultsLayout{Prefix: opts.Prefix, PendingTTL: opts.PendingTTL}.withDefaults()
	opts.Prefix, opts.PendingTTL = layout.Prefix, layout.PendingTTL
	if opts.Tombstone <= 0 {
		opts.Tombstone = 24 * time.Hour
	}
	rdb, own, err := connect(opts.URL, opts.Client)
	if err != nil {
		return nil, err
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		if own {
			rdb.Close()
		}
		return nil, fmt.Errorf("redis results: %w", classify(err))
	}
	return &Results{rdb: rdb, ownClient: own, opts: opts, layout: layout}, nil
}

// Layout returns the store's key prefix and pending TTL, for a Queue that
// writes pending records itself (Options.Results).
func (s *Results) Layout() ResultsLayout { return s.layout }

// A record is one hash: field recordMeta holds a resultWire as JSON, field
// recordBody the response body as raw bytes. enqueueScript writes the same
// two fields (its 'r' and 'b').
const (
	recordMeta = "r"
	recordBody = "b"
)

// resultWire is a Result without its body, as stored in field r.
type resultWire struct {
	Route       string      `json:"route,omitempty"`
	Principal   string      `json:"principal,omitempty"`
	Status      string      `json:"status"`
	Attempts    int         `json:"attempts,omitempty"`
	SubmittedAt time.Time   `json:"submitted_at,omitzero"`
	StartedAt   time.Time   `json:"started_at,omitzero"`
	UpdatedAt   time.Time   `json:"updated_at,omitzero"`
	CompletedAt time.Time   `json:"completed_at,omitzero"`
	Error       string      `json:"error,omitempty"`
	StatusCode  int         `json:"status_code,omitempty"`
	Headers     [][2]string `json:"headers,omitempty"`
}

// encodeRecord returns field r of r's record (field b is r.Body as is). It is
// the one encoding of a record, used by Create, Update and the queue's
// EnqueueWithResult alike.
func encodeRecord(r *backends.Result) ([]byte, error) {
	w := resultWire{
		Route: r.Route, Principal: r.Principal, Status: string(r.Status), Attempts: r.Attempts,
		SubmittedAt: r.SubmittedAt, StartedAt: r.StartedAt, UpdatedAt: r.UpdatedAt, CompletedAt: r.CompletedAt,
		Error: r.Error, StatusCode: r.StatusCode,
	}
	for _, h := range r.Headers {
		w.Headers = append(w.Headers, [2]string{h.Name, h.Value})
	}
	return json.Marshal(&w)
}

// finished reports whether a record in status st expires on the result TTL
// (with a tombstone) rather than on PendingTTL.
func finished(st backends.Status) bool {
	return st == backends.StatusCompleted || st == backends.StatusFailed
}

func (s *Results) key(id string) string  { return s.layout.key(id) }
func (s *Results) tomb(id string) string { return s.opts.Prefix + "tomb:" + id }

// Create records a new pending job (kept PendingTTL).
func (s *Results) Create(ctx context.Context, r *backends.Result) error {
	return s.put(ctx, "create", r, 0)
}

// Update replaces the record atomically. A completed or failed record expires
// ttl after r.CompletedAt, and its tombstone Tombstone later.
func (s *Results) Update(ctx context.Context, r *backends.Result, ttl time.Duration) error {
	return s.put(ctx, "update", r, ttl)
}

func (s *Results) put(ctx context.Context, op string, r *backends.Result, ttl time.Duration) error {
	meta, err := encodeRecord(r)
	if err != nil {
		return fmt.Errorf("redis results: %s %s: %w", op, r.ID, err)
	}
	k := s.key(r.ID)
	args := []any{meta, r.Body, 0, s.layout.PendingTTL.Milliseconds(), 0}
	if finished(r.Status) {
		done := r.CompletedAt
		if done.IsZero() {
			done = time.Now()
		}
		args[2], args[3], args[4] = 1, done.Add(ttl).UnixMilli(), done.Add(ttl+s.opts.Tombstone).UnixMilli()
	}
	res, err := putScript.Run(ctx, s.rdb, []string{k, s.tomb(r.ID)}, args...).Text()
	if err != nil {
		return fmt.Errorf("redis results: %s %s: %w", op, r.ID, classify(err))
	}
	if res == "FINISHED" {
		return fmt.Errorf("redis results: %s %s: %w", op, r.ID, backends.ErrFinished)
	}
	return nil
}

// putScript writes a record unless the stored one is already completed or
// failed. KEYS: record, tombstone. ARGV: meta, body, finished (0|1), then
// for a finished record its expiry and its tombstone's expiry (Unix ms),
// else the pending TTL (ms).
var putScript = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'r')
if cur then
  local ok, rec = pcall(cjson.decode, cur)
  if ok and (rec.status == 'completed' or rec.status == 'failed') then
    return 'FINISHED'
  end
end
redis.call('HSET', KEYS[1], 'r', ARGV[1], 'b', ARGV[2])
if ARGV[3] == '1' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[4])
  redis.call('SET', KEYS[2], '1', 'PXAT', ARGV[5])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return 'OK'
`)

// Get returns the record, ErrNotFound, or ErrExpired, in one round trip.
func (s *Results) Get(ctx context.Context, id string) (*backends.Result, error) {
	var fields *goredis.SliceCmd
	var tomb *goredis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		fields = p.HMGet(ctx, s.key(id), recordMeta, recordBody)
		tomb = p.Exists(ctx, s.tomb(id))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("redis results: get %s: %w", id, classify(err))
	}
	vals := fields.Val()
	meta, _ := vals[0].(string)
	if meta == "" {
		if tomb.Val() > 0 {
			return nil, fmt.Errorf("redis results: %s: %w", id, backends.ErrExpired)
		}
		return nil, fmt.Errorf("redis results: %s: %w", id, backends.ErrNotFound)
	}
	var w resultWire
	if err := json.Unmarshal([]byte(meta), &w); err != nil {
		return nil, fmt.Errorf("redis results: get %s: malformed record: %w", id, err)
	}
	r := &backends.Result{
		ID: id, Route: w.Route, Principal: w.Principal, Status: backends.Status(w.Status), Attempts: w.Attempts,
		SubmittedAt: w.SubmittedAt, StartedAt: w.StartedAt, UpdatedAt: w.UpdatedAt, CompletedAt: w.CompletedAt,
		Error: w.Error, StatusCode: w.StatusCode,
	}
	for _, h := range w.Headers {
		r.Headers = append(r.Headers, backends.Header{Name: h[0], Value: h[1]})
	}
	if b, _ := vals[1].(string); b != "" {
		r.Body = []byte(b)
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
	old, err := s.rdb.SetArgs(ctx, s.opts.Prefix+"idem:"+key, id+"\n"+digest, goredis.SetArgs{Mode: "NX", Get: true, TTL: ttl}).Result()
	if errors.Is(err, goredis.Nil) {
		return id, digest, nil
	}
	if err != nil {
		return "", "", fmt.Errorf("redis results: reserve: %w", classify(err))
	}
	bid, bdigest, _ := strings.Cut(old, "\n")
	return bid, bdigest, nil
}

// Close closes the client if NewResults created it.
func (s *Results) Close() error {
	if s.ownClient {
		return s.rdb.Close()
	}
	return nil
}
