// Package jobs is the operator's tooling on queues and results: the logic
// behind `openhqm jobs stats|ls|show|cancel|redrive|purge`, the admin pages
// /-/queues and /-/jobs, and the job API's DELETE. It works on any queue
// that implements backends.Inspector and on the result store; it opens
// nothing itself (the process hands it the backends of its generation, the
// command the ones it opened from the configuration).
//
// A job's state comes from its queue (waiting, in_flight, dead) and, once
// the queue no longer holds it, from its record (completed, failed,
// cancelled).
package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/openhqm/openhqm/backends"
)

// Store is the result store as the tooling uses it.
type Store interface {
	Get(ctx context.Context, id string) (*backends.Result, error)
	// Cancel marks a pending record cancelled (see memory.Results.Cancel).
	Cancel(ctx context.Context, id string, now time.Time, ttl time.Duration) (*backends.Result, error)
	// Reopen replaces a record, final or not, with a pending one.
	Reopen(ctx context.Context, r *backends.Result) error
}

// Queue is one configured queue.
type Queue struct {
	Name    string
	Backend string // memory | redis | kafka | sqs
	Q       backends.Queue
}

// Service answers the operator's questions about the queues and results it
// is given. It is safe for concurrent use when its backends are.
type Service struct {
	Queues  []Queue // in the order reports list them
	Results Store
	// QueueOf names the queue that carries jobs of route ("" is the submit
	// API's); "" when no configured route or API uses that name.
	QueueOf func(route string) string
	// TTL is how long a cancelled record is kept (results.ttl).
	TTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Errors a caller maps to its own answers (exit 1, HTTP 404/409).
var (
	ErrNoQueue      = errors.New("no such queue")
	ErrUnknownState = errors.New("unknown state")
	ErrNotFound     = backends.ErrNotFound
	ErrStarted      = backends.ErrStarted
	ErrFinished     = backends.ErrFinished
)

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) queue(name string) (*Queue, backends.Inspector, error) {
	for i := range s.Queues {
		q := &s.Queues[i]
		if q.Name != name {
			continue
		}
		in, ok := q.Q.(backends.Inspector)
		if !ok {
			return nil, nil, fmt.Errorf("queue %q (%s) cannot be inspected", name, q.Backend)
		}
		return q, in, nil
	}
	names := make([]string, len(s.Queues))
	for i, q := range s.Queues {
		names[i] = q.Name
	}
	return nil, nil, fmt.Errorf("%w %q (configured: %v)", ErrNoQueue, name, names)
}

// QueueStats is one queue's line of `jobs stats` and /-/queues.
type QueueStats struct {
	Name             string  `json:"name"`
	Backend          string  `json:"backend"`
	Waiting          int64   `json:"waiting"`   // not yet delivered (or waiting for a retry)
	InFlight         int64   `json:"in_flight"` // delivered and not acknowledged
	Dead             int64   `json:"dead"`      // in the dead letters
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	Error            string  `json:"error,omitempty"` // the queue could not be read
}

// StatsReport is the JSON of `jobs stats` and /-/queues.
type StatsReport struct {
	Queues []QueueStats `json:"queues"`
}

// Stats reports every queue; a queue that cannot be read carries its error
// and the others are still reported. err is the first such error.
func (s *Service) Stats(ctx context.Context) (StatsReport, error) {
	rep := StatsReport{Queues: []QueueStats{}}
	var first error
	for _, q := range s.Queues {
		line := QueueStats{Name: q.Name, Backend: q.Backend}
		st, err := q.Q.Stats(ctx)
		if err != nil {
			line.Error = err.Error()
			first = cmpOr(first, fmt.Errorf("queue %q: %w", q.Name, err))
		} else {
			line.Waiting, line.InFlight, line.Dead = max(st.Depth-st.Pending, 0), st.Pending, st.DeadLetters
			line.OldestAgeSeconds = st.OldestAge.Seconds()
		}
		rep.Queues = append(rep.Queues, line)
	}
	return rep, first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// Job is one job's line of `jobs ls`.
type Job struct {
	ID        string    `json:"id"`
	Queue     string    `json:"queue"`
	State     string    `json:"state"`
	Route     string    `json:"route"`
	Endpoint  string    `json:"endpoint"`
	Attempts  int       `json:"attempts"`
	Error     string    `json:"error"`
	CreatedAt time.Time `json:"created_at"`
}

// JobList is the JSON of `jobs ls`.
type JobList struct {
	Jobs []Job `json:"jobs"`
}

// ListOptions selects the jobs of List.
type ListOptions struct {
	Queue string // "": every queue
	State string // waiting | in_flight | dead (a queue's), failed | completed | cancelled (the records'); "": a queue's three
	Route string
	Limit int // ≤ 0: 100
}

// States List accepts: where a queue holds a job, then the outcomes read
// from the result store.
var States = []string{string(backends.StateWaiting), string(backends.StateInFlight), string(backends.StateDead),
	string(backends.StatusFailed), string(backends.StatusCompleted), string(backends.StatusCancelled)}

// RecordLister is a result store that lists its records by status.
type RecordLister interface {
	Records(ctx context.Context, st backends.Status, route string, limit int) ([]*backends.Result, error)
}

// List answers the jobs the queues hold, oldest first per queue and state.
func (s *Service) List(ctx context.Context, o ListOptions) (JobList, error) {
	if o.State != "" && !slices.Contains(States, o.State) {
		return JobList{}, fmt.Errorf("%w %q (one of %v)", ErrUnknownState, o.State, States)
	}
	if o.Limit <= 0 {
		o.Limit = 100
	}
	out := JobList{Jobs: []Job{}}
	if o.Queue != "" {
		if _, _, err := s.queue(o.Queue); err != nil {
			return out, err
		}
	}
	if st := backends.Status(o.State); st.Final() {
		return s.listRecords(ctx, st, o)
	}
	for _, q := range s.Queues {
		if o.Queue != "" && q.Name != o.Queue {
			continue
		}
		_, in, err := s.queue(q.Name)
		if err != nil {
			return out, err
		}
		es, err := in.List(ctx, backends.Filter{State: backends.State(o.State), Route: o.Route, Limit: o.Limit - len(out.Jobs),
			Keep: func(e *backends.Entry) bool { return e.State != backends.StateWaiting || !s.settled(ctx, e.Job.ID) }})
		if err != nil {
			return out, fmt.Errorf("queue %q: %w", q.Name, err)
		}
		for _, e := range es {
			out.Jobs = append(out.Jobs, summary(q.Name, &e))
		}
		if len(out.Jobs) >= o.Limit {
			break
		}
	}
	return out, nil
}

// settled reports whether job id's record is final. A queue lists what it
// still holds, which includes cancelled jobs that stay until a worker drops
// them (Redis marks them, Kafka cannot withdraw a record) and, on Kafka,
// jobs finished whose offsets are not committed yet; their records tell.
func (s *Service) settled(ctx context.Context, id string) bool {
	rec, err := s.Results.Get(ctx, id)
	return err == nil && rec.Status.Final()
}

// listRecords answers the jobs whose records are in status st.
func (s *Service) listRecords(ctx context.Context, st backends.Status, o ListOptions) (JobList, error) {
	out := JobList{Jobs: []Job{}}
	rl, ok := s.Results.(RecordLister)
	if !ok {
		return out, fmt.Errorf("the result store cannot list records by status")
	}
	limit := o.Limit
	if o.Queue != "" {
		limit = 0 // filtered by queue below
	}
	rs, err := rl.Records(ctx, st, o.Route, limit)
	if err != nil {
		return out, err
	}
	for _, r := range rs {
		q := ""
		if s.QueueOf != nil {
			q = s.QueueOf(r.Route)
		}
		if o.Queue != "" && q != o.Queue {
			continue
		}
		out.Jobs = append(out.Jobs, Job{ID: r.ID, Queue: q, State: string(r.Status), Route: r.Route,
			Attempts: r.Attempts, Error: r.Error, CreatedAt: r.SubmittedAt.UTC()})
		if len(out.Jobs) >= o.Limit {
			break
		}
	}
	return out, nil
}

func summary(queue string, e *backends.Entry) Job {
	return Job{
		ID: e.Job.ID, Queue: queue, State: string(e.State), Route: e.Job.Route, Endpoint: e.Job.Endpoint,
		Attempts: e.Attempts, Error: e.Reason, CreatedAt: e.Job.CreatedAt.UTC(),
	}
}

// Detail is the JSON of `jobs show`: a job's line plus its request and
// what is known of its attempts and result. The body is left out unless
// asked for; headers are never shown (they may carry credentials of the
// app's own).
type Detail struct {
	Job
	Method string `json:"method"`
	Path   string `json:"path"`
	Query  string `json:"query,omitempty"`
	// LastOutcome is the outcome of the last attempt as recorded (the dead
	// letter's reason, or the record's error).
	LastOutcome string `json:"last_outcome,omitempty"`
	LastStatus  int    `json:"last_status,omitempty"`
	// Outcomes lists each attempt's outcome since the job was submitted or
	// redriven, oldest first (the latest backends.MaxHistory failures, and
	// the completing attempt). An attempt that ended without an outcome (its
	// worker stopped or lost the lease) has no entry.
	Outcomes []Outcome `json:"attempt_outcomes,omitempty"`
	Result   *Result   `json:"result,omitempty"`
	Body     *string   `json:"body,omitempty"`
}

// Outcome is how one attempt ended.
type Outcome struct {
	Attempt    int       `json:"attempt"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code,omitempty"`
	Outcome    string    `json:"outcome"`
	// Uncounted: the app asked to wait, and the attempt was not charged.
	Uncounted bool `json:"uncounted,omitempty"`
}

// outcomes is what a record tells of its attempts.
func outcomes(rec *backends.Result) []Outcome {
	var out []Outcome
	for _, a := range rec.History {
		out = append(out, Outcome{Attempt: a.Number, At: a.At.UTC(), StatusCode: a.StatusCode, Outcome: a.Error, Uncounted: a.Uncounted})
	}
	if rec.Status == backends.StatusCompleted {
		out = append(out, Outcome{Attempt: rec.Attempts, At: rec.CompletedAt.UTC(), StatusCode: rec.StatusCode, Outcome: "completed"})
	}
	return out
}

// Result is the stored record of a job, without the app's answer.
type Result struct {
	Status      string    `json:"status"`
	Attempts    int       `json:"attempts"`
	Error       string    `json:"error,omitempty"`
	StatusCode  int       `json:"status_code,omitempty"`
	SubmittedAt time.Time `json:"submitted_at,omitzero"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	CompletedAt time.Time `json:"completed_at,omitzero"`
}

// Show answers what is known of job id: its queue entry when a queue holds
// it, and its record. ErrNotFound when neither knows it.
func (s *Service) Show(ctx context.Context, id string, body bool) (*Detail, error) {
	rec, err := s.Results.Get(ctx, id)
	if err != nil && !errors.Is(err, backends.ErrNotFound) && !errors.Is(err, backends.ErrExpired) {
		return nil, err
	}
	names := make([]string, 0, len(s.Queues))
	if rec != nil && s.QueueOf != nil {
		if n := s.QueueOf(rec.Route); n != "" {
			names = append(names, n)
		}
	}
	for _, q := range s.Queues {
		if !slices.Contains(names, q.Name) {
			names = append(names, q.Name)
		}
	}
	var d *Detail
	for _, name := range names {
		_, in, err := s.queue(name)
		if err != nil {
			continue
		}
		es, err := in.List(ctx, backends.Filter{ID: id, Limit: 1})
		if err != nil {
			return nil, fmt.Errorf("queue %q: %w", name, err)
		}
		if len(es) == 1 {
			e := es[0]
			d = &Detail{Job: summary(name, &e), Method: e.Job.Method, Path: e.Job.Path, Query: e.Job.Query,
				LastOutcome: e.Reason, LastStatus: e.LastStatus}
			if body {
				b := string(e.Job.Body)
				d.Body = &b
			}
			break
		}
	}
	if rec == nil && d == nil {
		return nil, fmt.Errorf("job %s: %w", id, backends.ErrNotFound)
	}
	if d == nil {
		d = &Detail{Job: Job{ID: id, State: string(rec.Status), Route: rec.Route, CreatedAt: rec.SubmittedAt.UTC()}}
		if s.QueueOf != nil {
			d.Queue = s.QueueOf(rec.Route)
		}
	}
	if rec != nil {
		d.Result = &Result{Status: string(rec.Status), Attempts: rec.Attempts, Error: rec.Error, StatusCode: rec.StatusCode,
			SubmittedAt: rec.SubmittedAt.UTC(), StartedAt: rec.StartedAt.UTC(), CompletedAt: rec.CompletedAt.UTC()}
		// The record counts the attempts that reached the app; a queue
		// entry counts deliveries.
		d.Attempts = max(d.Attempts, rec.Attempts)
		if d.Error == "" {
			d.Error = rec.Error
		}
		if d.LastOutcome == "" {
			d.LastOutcome = rec.Error
		}
		if d.LastStatus == 0 {
			d.LastStatus = rec.StatusCode
		}
		d.Outcomes = outcomes(rec)
	}
	return d, nil
}

// uncanceller is a queue whose Cancel leaves a mark that must be removed
// when the cancel turns out to come too late (redis).
type uncanceller interface {
	Uncancel(ctx context.Context, id string) error
}

// Cancel cancels job id if it has not started: its queue withdraws it, and
// its record reads cancelled. ErrNotFound for an unknown (or expired) id,
// ErrStarted when a worker has it, ErrFinished when it has an outcome.
func (s *Service) Cancel(ctx context.Context, id string) (*backends.Result, error) {
	rec, err := s.Results.Get(ctx, id)
	if errors.Is(err, backends.ErrExpired) {
		return nil, fmt.Errorf("job %s: its record expired: %w", id, backends.ErrFinished)
	}
	if err != nil {
		return nil, err
	}
	if err := rec.Cancellable(); err != nil {
		return nil, fmt.Errorf("job %s: %w", id, err)
	}
	name := ""
	if s.QueueOf != nil {
		name = s.QueueOf(rec.Route)
	}
	_, in, err := s.queue(name)
	if err != nil {
		return nil, fmt.Errorf("job %s of route %q: %w", id, rec.Route, err)
	}
	if err := in.Cancel(ctx, id); err != nil && !errors.Is(err, backends.ErrNotFound) {
		return nil, err
	}
	res, err := s.Results.Cancel(ctx, id, s.now(), s.TTL)
	if err != nil {
		if u, ok := in.(uncanceller); ok {
			if uerr := u.Uncancel(ctx, id); uerr != nil {
				err = fmt.Errorf("%w (and its cancel mark stays: %v)", err, uerr)
			}
		}
		return nil, err
	}
	return res, nil
}

// RedriveOptions selects the dead letters Redrive sends back.
type RedriveOptions struct {
	Queue string
	IDs   []string // nil: all
	Route string
}

// Redrive sends the selected dead letters of a queue back to it with their
// ids and a fresh attempt budget; each job's record reads pending before
// the job is back in the queue. A dead letter whose job's record is no
// longer failed (it was sent back before, or finished) is dropped, not
// sent again. It answers how many went back.
func (s *Service) Redrive(ctx context.Context, o RedriveOptions) (int, error) {
	_, in, err := s.queue(o.Queue)
	if err != nil {
		return 0, err
	}
	now := s.now()
	return in.Redrive(ctx, backends.RedriveOptions{IDs: o.IDs, Route: o.Route, Prepare: func(ctx context.Context, j *backends.Job) error {
		rec, err := s.Results.Get(ctx, j.ID)
		switch {
		case err == nil && rec.Status != backends.StatusFailed:
			return backends.ErrSkip
		case err != nil && !errors.Is(err, backends.ErrNotFound) && !errors.Is(err, backends.ErrExpired):
			return err
		}
		r := &backends.Result{ID: j.ID, Route: j.Route, Principal: j.Principal, Status: backends.StatusPending,
			SubmittedAt: j.CreatedAt, UpdatedAt: now}
		if rec != nil && !rec.SubmittedAt.IsZero() {
			r.SubmittedAt = rec.SubmittedAt
		}
		return s.Results.Reopen(ctx, r)
	}})
}

// Purge drops a queue's dead letters older than olderThan (all when 0)
// and answers how many.
func (s *Service) Purge(ctx context.Context, queue string, olderThan time.Duration) (int, error) {
	_, in, err := s.queue(queue)
	if err != nil {
		return 0, err
	}
	var cutoff time.Time
	if olderThan > 0 {
		cutoff = s.now().Add(-olderThan)
	}
	return in.Purge(ctx, cutoff)
}
