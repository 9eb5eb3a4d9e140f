package backends

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrStarted means the job was already handed to a worker, so it can no longer
// be cancelled (409).
var ErrStarted = errors.New("job already started")

// ErrSkip is returned by RedriveOptions.Prepare to drop a dead letter without
// moving it back: its job was already sent back or finished another way.
var ErrSkip = errors.New("skip")

// State is where a queue holds a job.
type State string

const (
	StateWaiting  State = "waiting"   // accepted, not delivered (or waiting for a retry)
	StateInFlight State = "in_flight" // delivered to a worker and not acknowledged
	StateDead     State = "dead"      // in the dead letters
)

// Entry is one job as a queue holds it, for operators.
type Entry struct {
	Job   *Job
	State State
	// Attempts: deliveries so far (for a dead letter, the attempts it
	// recorded). Backends that cannot tell answer 0.
	Attempts int
	// Reason and At: why and when a dead letter was dead-lettered, and the
	// app's last status code when there was one.
	Reason     string
	At         time.Time
	LastStatus int
}

// Filter selects entries of a queue. Zero fields select everything.
type Filter struct {
	State State
	Route string
	ID    string
	Limit int // ≤ 0: no bound
	// Keep, when set, is asked last about each entry that passes the
	// rest; one it answers false for is left out and does not count
	// against Limit.
	Keep func(*Entry) bool
}

// Match reports whether e passes f (Limit aside).
func (f Filter) Match(e *Entry) bool {
	return (f.State == "" || f.State == e.State) &&
		(f.Route == "" || f.Route == e.Job.Route) &&
		(f.ID == "" || f.ID == e.Job.ID) &&
		(f.Keep == nil || f.Keep(e))
}

// RedriveOptions selects the dead letters that go back to their queue.
type RedriveOptions struct {
	IDs   []string // nil: every dead letter
	Route string   // "": any route
	// Prepare is called with each selected dead letter's job before it is
	// moved back (the caller resets the job's record there, so that its
	// status reads pending before a worker can take it). nil error: moved;
	// ErrSkip: dropped from the dead letters without being moved; any other
	// error stops the redrive.
	Prepare func(ctx context.Context, j *Job) error
}

// Selects reports whether the redrive takes job j: of the route asked for,
// and among the ids asked for.
func (o RedriveOptions) Selects(j *Job) bool {
	return j != nil && (o.Route == "" || j.Route == o.Route) && (o.IDs == nil || slices.Contains(o.IDs, j.ID))
}

// Inspector is the operator's view of a queue (`openhqm jobs`, the admin
// pages), implemented by every queue backend. Stats is the queue's own.
type Inspector interface {
	// List answers the entries that pass f, oldest first, up to f.Limit.
	List(ctx context.Context, f Filter) ([]Entry, error)
	// Cancel withdraws job id if no worker has taken it: afterwards no
	// worker replays it. ErrStarted when it was already delivered. A queue
	// that cannot withdraw a job (Kafka, SQS) answers nil and relies on the
	// worker reading the job's cancelled record before the replay (see
	// WithdrawsCancelled).
	Cancel(ctx context.Context, id string) error
	// Redrive moves the selected dead letters back to the queue, with the
	// same id and a fresh attempt budget, and answers how many it moved.
	Redrive(ctx context.Context, o RedriveOptions) (int, error)
	// Purge drops the dead letters dead-lettered before cutoff (zero: all)
	// and answers how many.
	Purge(ctx context.Context, cutoff time.Time) (int, error)
	// WithdrawsCancelled reports whether Cancel itself keeps a cancelled job
	// from any worker (memory, redis); otherwise a worker must mark a job
	// processing in the result store before it calls the app, so that a
	// cancel and the start of the job exclude each other there.
	WithdrawsCancelled() bool
}

// CancelledReason is the error text of a cancelled job's record.
const CancelledReason = "cancelled before it started"

// Cancellable answers nil when a job with this record may be cancelled
// (it is pending), ErrStarted when it is processing, and ErrFinished when
// it already has an outcome.
func (r *Result) Cancellable() error {
	switch {
	case r.Status.Final():
		return fmt.Errorf("%w: %s", ErrFinished, r.Status)
	case r.Status == StatusPending:
		return nil
	}
	return fmt.Errorf("%w: %s", ErrStarted, r.Status)
}
