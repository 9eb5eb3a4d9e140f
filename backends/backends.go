// Package backends holds the data types and sentinel errors shared by the
// queue and result-store implementations (memory/, redis/, kafka/,
// results in memory/ and redis/) and by their users, the router and the
// worker pool. Each user declares the small interface it needs; Queue and
// ResultStore below are the wide forms that wiring and the conformance suite
// (backendtest/) use.
package backends

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Sentinel errors. Implementations wrap them with context; callers test with errors.Is.
var (
	// ErrFull: the queue is at its max_depth; the submit is refused (503 + Retry-After).
	ErrFull = errors.New("queue full")
	// ErrUnavailable: the backend cannot be reached; nothing was stored (503).
	ErrUnavailable = errors.New("backend unavailable")
	// ErrNotFound: no such job or result.
	ErrNotFound = errors.New("not found")
	// ErrExpired: the result existed and its retention has passed (410).
	ErrExpired = errors.New("expired")
	// ErrClosed: the queue or store was closed.
	ErrClosed = errors.New("closed")
	// ErrLeaseLost: the delivery is no longer held by this consumer (its lease
	// expired and another consumer took it); its ack or nack is refused.
	ErrLeaseLost = errors.New("lease lost")
	// ErrConflict: an idempotency key was reused with a different request.
	ErrConflict = errors.New("conflict")
	// ErrTooLarge: the job does not fit the backend's message size limit;
	// nothing was stored (413). A *TooLargeError carries the limit.
	ErrTooLarge = errors.New("job too large for the backend")
	// ErrFinished: the job's record is already completed, failed or cancelled; a
	// result store never replaces such a record (two overlapping deliveries
	// of one job must not undo the outcome a client may have read).
	ErrFinished = errors.New("job already finished")
)

// TooLargeError is ErrTooLarge with the limit that was exceeded; its text is
// safe to show a client.
type TooLargeError struct {
	Backend string // "SQS"
	Limit   int64  // bytes
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("larger than the %s message limit of %d KiB", e.Backend, e.Limit>>10)
}

func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// Header is one HTTP header field.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Job is one accepted request waiting to be replayed against an endpoint. A Job
// owns all its memory (nothing points into a fasthttp buffer). It is not
// modified after Enqueue.
type Job struct {
	ID        string    // 32 lowercase hex characters, 128 random bits
	Route     string    // route name; "" for the submit API
	Endpoint  string    // endpoint name the job is sent to
	Queue     string    // queue name
	Method    string    // HTTP method
	Path      string    // request path, without query
	Query     string    // raw query string, without '?'
	Headers   []Header  // end-to-end request headers to replay (no hop-by-hop, no client credentials)
	Body      []byte    // raw request body
	Principal string    // who submitted it (a digest of the client credential, never the credential); "" when anonymous
	Key       string    // ordering/partition key; "" for none
	CreatedAt time.Time // when the job was accepted
}

// Delivery is a job handed to one consumer, with the receipt needed to ack,
// nack or extend it. A Delivery is used by one goroutine at a time.
type Delivery struct {
	Job *Job
	// Attempt is the 1-based number of this delivery: 1 the first time, 2 after
	// one nack or one lease expiry, and so on.
	Attempt int
	// Receipt identifies the delivery to the backend (a stream entry id, an
	// offset); opaque to callers.
	Receipt string
	// LeaseUntil is when the job is handed to another consumer unless extended.
	LeaseUntil time.Time
}

// Stats describes a queue's backlog.
type Stats struct {
	Depth       int64         // jobs accepted and not yet acknowledged (waiting, leased and delayed)
	Pending     int64         // of those, currently leased to a consumer
	Delayed     int64         // of those, waiting for a retry delay
	OldestAge   time.Duration // age of the oldest unacknowledged job; 0 when empty
	DeadLetters int64         // entries in the dead-letter queue
}

// DeadLetter is an entry in a dead-letter queue.
type DeadLetter struct {
	Job      *Job
	Reason   string
	Attempts int
	At       time.Time
	// LastStatus and LastBody are the last upstream answer, when there was one.
	LastStatus int
	LastBody   []byte
}

// Queue is the wide interface of a queue backend, for wiring and the
// conformance suite. All methods are safe for concurrent use.
type Queue interface {
	// Enqueue stores the job durably (as durable as the backend is) before it
	// returns nil. ErrFull above max depth, ErrUnavailable when the backend
	// cannot be reached, ErrClosed after Close. When ctx ends first the
	// outcome is unknown: the job may still have been stored (and will then be
	// processed), so callers treat it as a failure without deleting the job's
	// result record.
	Enqueue(ctx context.Context, job *Job) error
	// Receive waits until at least one job is available, up to max jobs, or
	// until ctx is done or a backend-chosen poll interval (≤ 1s) passes, in
	// which case it returns no deliveries and a nil error. Each delivery is
	// leased to consumer until Delivery.LeaseUntil.
	Receive(ctx context.Context, consumer string, max int) ([]*Delivery, error)
	// Ack finishes a delivery: the job is never delivered again. Ack, Nack,
	// Extend and DeadLetter answer ErrLeaseLost when the backend can tell that
	// the lease expired and the job was delivered again since (memory and
	// redis can); a lease that expired with no redelivery yet is still honoured.
	Ack(ctx context.Context, d *Delivery) error
	// Nack returns the job to the queue to be delivered again after delay.
	Nack(ctx context.Context, d *Delivery, delay time.Duration) error
	// Extend pushes the delivery's lease to now+lease and updates LeaseUntil.
	// Backends whose lease is fixed per queue (redis: the idle time of a
	// pending entry) extend by their configured lease whatever lease says;
	// LeaseUntil always tells the truth, so extend again well before it.
	Extend(ctx context.Context, d *Delivery, lease time.Duration) error
	// DeadLetter copies the job with the reason to the dead-letter queue and acks it.
	DeadLetter(ctx context.Context, d *Delivery, dl DeadLetter) error
	// Stats reports the backlog.
	Stats(ctx context.Context) (Stats, error)
	// Close releases the backend's resources. Deliveries not acked are
	// delivered again (to this or another process) after their lease.
	Close() error
}

// Status is the state of a job as clients see it.
type Status string

const (
	StatusPending    Status = "pending"
	StatusProcessing Status = "processing"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
	// StatusCancelled: an operator or the submitting client cancelled the
	// job before it started; it is never replayed.
	StatusCancelled Status = "cancelled"
)

// Final reports whether a record in this status is an outcome that is
// never replaced: completed, failed or cancelled.
func (s Status) Final() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// Result is the status and, once finished, the outcome of a job. It is written
// as a whole (one hash per job in Redis), so a reader never sees a completed
// status without its response.
type Result struct {
	ID          string
	Route       string
	Principal   string // copied from the job; only this principal may read it
	Status      Status
	Attempts    int
	SubmittedAt time.Time
	StartedAt   time.Time // first time a worker took it; zero while pending
	UpdatedAt   time.Time
	CompletedAt time.Time // zero until completed or failed
	Error       string    // for failed jobs: why
	// The app's answer, verbatim, for completed jobs (and the last answer for
	// failed ones when there was one).
	StatusCode int
	Headers    []Header
	Body       []byte
	// History holds the outcomes of the attempts sent to the app that
	// failed since the job was submitted (or redriven), oldest first: the
	// latest MaxHistory. A pause waited out in place belongs to the attempt
	// it interrupted; one that sent the job back is an Uncounted entry.
	History []Attempt
}

// Attempt is the outcome of one failed attempt of a job.
type Attempt struct {
	Number     int       // the attempt's number: Result.Attempts when it ended
	At         time.Time // when it ended
	StatusCode int       // the app's answer; 0 when there was none
	Error      string    // why it failed, in one line of at most MaxAttemptError bytes
	// Uncounted: the app asked to wait (429 or 503 with Retry-After), and
	// the attempt was not charged to the job's budget.
	Uncounted bool
}

// MaxHistory bounds Result.History, and MaxAttemptError the length of one
// entry's Error, so that a job that keeps failing keeps a small record.
const (
	MaxHistory      = 10
	MaxAttemptError = 256
)

// AddAttempt appends a to r.History, keeping the latest MaxHistory, and
// cuts a.Error to MaxAttemptError bytes on a character boundary. History
// gets a new backing array: a store that keeps the Result given to it
// (the memory store) shares nothing with the caller's next append.
func (r *Result) AddAttempt(a Attempt) {
	if len(a.Error) > MaxAttemptError {
		cut := MaxAttemptError
		for cut > 0 && !utf8.RuneStart(a.Error[cut]) {
			cut--
		}
		a.Error = a.Error[:cut]
	}
	keep := r.History[max(0, len(r.History)-(MaxHistory-1)):]
	h := make([]Attempt, 0, len(keep)+1)
	r.History = append(append(h, keep...), a)
}

// ResultStore is the wide interface of a result store. All methods are safe for
// concurrent use.
type ResultStore interface {
	// Create records a new pending job. It must not expire before the job
	// finishes (pending records are kept at least as long as jobs may wait).
	// A bounded store with only unfinished records answers ErrFull.
	Create(ctx context.Context, r *Result) error
	// Update replaces the record of r.ID atomically, unless it is already
	// completed or failed (ErrFinished, nothing written). When r.Status is completed
	// or failed the record expires ttl after r.CompletedAt and a tombstone
	// remains so that Get answers ErrExpired rather than ErrNotFound.
	Update(ctx context.Context, r *Result, ttl time.Duration) error
	// Get returns the record, ErrNotFound, or ErrExpired.
	Get(ctx context.Context, id string) (*Result, error)
	// Delete removes a record (used when an enqueue failed after Create).
	Delete(ctx context.Context, id string) error
	// Reserve binds an idempotency key (already scoped by route and principal
	// by the caller) to a job id and a digest of the request, for ttl. When the
	// key is already bound it returns the existing id and digest and does not
	// change them; otherwise it returns id and digest unchanged.
	Reserve(ctx context.Context, key, id, digest string, ttl time.Duration) (boundID, boundDigest string, err error)
	Close() error
}
