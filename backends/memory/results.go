package memory

import (
	"container/heap"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/openhqm/openhqm/backends"
)

// ResultsOptions configures a Results store.
type ResultsOptions struct {
	// MaxEntries bounds the records held (pending and finished). At the bound
	// the finished record that expires first is evicted (and answers
	// ErrExpired); when every record is still pending, Create answers ErrFull.
	// ≤ 0: default 100000.
	MaxEntries int
	// Tombstone is how long an expired id answers ErrExpired before it answers
	// ErrNotFound; default 24h.
	Tombstone time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

type record struct {
	r       backends.Result
	expires time.Time // zero while pending or processing
}

// expiry is a deadline in one of the store's heaps; stale entries are skipped.
type expiry struct {
	key string
	at  time.Time
}

type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

type binding struct {
	id, digest string
	expires    time.Time
}

// Results is an in-process result store: a map of records with a TTL counted
// from completion and tombstones for expired ids. Like the memory queue it does
// not survive a restart. All methods are safe for concurrent use. The store
// keeps the Result it is given (a shallow copy sharing Headers and Body):
// callers must not modify those slices afterwards, nor those of a Result that
// Get returned.
type Results struct {
	opts ResultsOptions

	mu       sync.Mutex
	closed   bool
	records  map[string]*record
	finished expiryHeap // record expiries
	tombs    map[string]time.Time
	tombHeap expiryHeap
	keys     map[string]binding
	keyHeap  expiryHeap
}

// NewResults returns an empty store.
func NewResults(opts ResultsOptions) (*Results, error) {
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 100000
	}
	if opts.Tombstone <= 0 {
		opts.Tombstone = 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Results{
		opts:    opts,
		records: make(map[string]*record),
		tombs:   make(map[string]time.Time),
		keys:    make(map[string]binding),
	}, nil
}

// sweep drops what expired by now; s.mu is held. Work is amortised over calls,
// so the store needs no goroutine.
func (s *Results) sweep(now time.Time) {
	for s.finished.Len() > 0 && !s.finished[0].at.After(now) {
		e := heap.Pop(&s.finished).(expiry)
		if rec := s.records[e.key]; rec != nil && rec.expires.Equal(e.at) {
			s.bury(e.key, e.at)
		}
	}
	for s.tombHeap.Len() > 0 && !s.tombHeap[0].at.After(now) {
		e := heap.Pop(&s.tombHeap).(expiry)
		if at, ok := s.tombs[e.key]; ok && at.Equal(e.at) {
			delete(s.tombs, e.key)
		}
	}
	for s.keyHeap.Len() > 0 && !s.keyHeap[0].at.After(now) {
		e := heap.Pop(&s.keyHeap).(expiry)
		if b, ok := s.keys[e.key]; ok && b.expires.Equal(e.at) {
			delete(s.keys, e.key)
		}
	}
}

// bury replaces a record by a tombstone; s.mu is held.
func (s *Results) bury(id string, expiredAt time.Time) {
	delete(s.records, id)
	until := expiredAt.Add(s.opts.Tombstone)
	s.tombs[id] = until
	heap.Push(&s.tombHeap, expiry{id, until})
}

func (s *Results) check(op string) error {
	if s.closed {
		return fmt.Errorf("memory results: %s: %w", op, backends.ErrClosed)
	}
	return nil
}

// Create records a new pending job; pending records never expire.
func (s *Results) Create(ctx context.Context, r *backends.Result) error {
	return s.put("create", r, 0)
}

// Update replaces the record; finished records expire ttl after CompletedAt.
func (s *Results) Update(ctx context.Context, r *backends.Result, ttl time.Duration) error {
	return s.put("update", r, ttl)
}

func (s *Results) put(op string, r *backends.Result, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.putLocked(op, r, ttl)
}

// putLocked is put with s.mu held.
func (s *Results) putLocked(op string, r *backends.Result, ttl time.Duration) error {
	if err := s.check(op); err != nil {
		return err
	}
	now := s.opts.Now()
	s.sweep(now)
	rec := s.records[r.ID]
	if rec != nil && rec.r.Status.Final() {
		return fmt.Errorf("memory results: %s %s: %w", op, r.ID, backends.ErrFinished)
	}
	if rec == nil {
		if len(s.records) >= s.opts.MaxEntries && !s.evict() {
			return fmt.Errorf("memory results: %s %s: %d records pending: %w", op, r.ID, len(s.records), backends.ErrFull)
		}
		rec = &record{}
		s.records[r.ID] = rec
		delete(s.tombs, r.ID)
	}
	rec.r = *r
	rec.expires = time.Time{}
	if r.Status.Final() {
		done := r.CompletedAt
		if done.IsZero() {
			done = now
		}
		rec.expires = done.Add(ttl)
		heap.Push(&s.finished, expiry{r.ID, rec.expires})
		if !rec.expires.After(now) {
			s.bury(r.ID, rec.expires)
		}
	}
	return nil
}

// evict buries the finished record expiring first; s.mu is held.
func (s *Results) evict() bool {
	for s.finished.Len() > 0 {
		e := heap.Pop(&s.finished).(expiry)
		if rec := s.records[e.key]; rec != nil && rec.expires.Equal(e.at) {
			s.bury(e.key, s.opts.Now())
			return true
		}
	}
	return false
}

// Get returns a copy of the record, ErrNotFound, or ErrExpired.
func (s *Results) Get(ctx context.Context, id string) (*backends.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("get"); err != nil {
		return nil, err
	}
	s.sweep(s.opts.Now())
	if rec := s.records[id]; rec != nil {
		r := rec.r
		return &r, nil
	}
	if _, ok := s.tombs[id]; ok {
		return nil, fmt.Errorf("memory results: %s: %w", id, backends.ErrExpired)
	}
	return nil, fmt.Errorf("memory results: %s: %w", id, backends.ErrNotFound)
}

// Delete removes a record without leaving a tombstone.
func (s *Results) Delete(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("delete"); err != nil {
		return err
	}
	delete(s.records, id)
	delete(s.tombs, id)
	return nil
}

// Reserve binds key to id and digest for ttl unless it is already bound; it
// returns the binding in force.
func (s *Results) Reserve(ctx context.Context, key, id, digest string, ttl time.Duration) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check("reserve"); err != nil {
		return "", "", err
	}
	now := s.opts.Now()
	s.sweep(now)
	if b, ok := s.keys[key]; ok && b.expires.After(now) {
		return b.id, b.digest, nil
	}
	b := binding{id: id, digest: digest, expires: now.Add(ttl)}
	s.keys[key] = b
	heap.Push(&s.keyHeap, expiry{key, b.expires})
	return id, digest, nil
}

// Close makes further calls answer ErrClosed and drops the records.
func (s *Results) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.records, s.tombs, s.keys = map[string]*record{}, map[string]time.Time{}, map[string]binding{}
	s.finished, s.tombHeap, s.keyHeap = nil, nil, nil
	return nil
}
