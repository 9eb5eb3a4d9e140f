// Package workerpool replays queued jobs against their endpoints: receive →
// mark processing → replay through internal/upstream with the current
// configuration → store the outcome atomically → ack, or nack with backoff, or
// dead-letter. Delivery is at least once: a job is acknowledged only after its
// outcome is stored, and the app receives the job id as Idempotency-Key on
// every attempt so that it can recognise a replay.
package workerpool

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/upstream"
)

// Consumer is the part of a queue backend the pool uses; every
// backends.Queue is one. Its methods must be safe for concurrent use. A
// Consumer that also implements StatsReporter gets depth and age metrics.
type Consumer interface {
	Receive(ctx context.Context, consumer string, max int) ([]*backends.Delivery, error)
	Ack(ctx context.Context, d *backends.Delivery) error
	Nack(ctx context.Context, d *backends.Delivery, delay time.Duration) error
	Extend(ctx context.Context, d *backends.Delivery, lease time.Duration) error
	DeadLetter(ctx context.Context, d *backends.Delivery, dl backends.DeadLetter) error
}

// ResultAcker is a Consumer that can store a job's outcome and ack its
// delivery in one step (a Redis queue whose server also holds the results).
// AckWithResult stores r as Results.Update(r, ttl) would, before or with the
// ack; an error wrapping backends.ErrFinished means the record was already
// final and the delivery was still acked, one wrapping backends.ErrLeaseLost
// that r was stored but the delivery not acked. The pool uses it only for the
// result store WritesResults accepts.
type ResultAcker interface {
	AckWithResult(ctx context.Context, d *backends.Delivery, r *backends.Result, ttl time.Duration) error
	WritesResults(store any) bool
}

// CancelWithdrawer is a Consumer that says whether it keeps cancelled jobs
// from the pool itself (memory, redis: backends.Inspector). One that does
// not (kafka, sqs) gets every first delivery marked processing in the
// result store before the app sees it: a cancel only succeeds on a pending
// record, so the mark and the cancel exclude each other, and a cancelled
// job's mark is refused and the job acknowledged without a replay. A
// Consumer without the method is taken to withdraw them.
type CancelWithdrawer interface {
	WithdrawsCancelled() bool
}

// Results is the part of a result store the pool uses; every
// backends.ResultStore is one. Its methods must be safe for concurrent use.
type Results interface {
	Get(ctx context.Context, id string) (*backends.Result, error)
	Update(ctx context.Context, r *backends.Result, ttl time.Duration) error
}

// Snapshot is what one job attempt uses of the configuration generation that
// was current when it started: the configuration (retry policy, timeouts),
// the result store and the endpoint clients. It must stay usable until the
// attempt calls the function Options.Current returned with it.
type Snapshot struct {
	Config    *config.Config
	Results   Results
	Endpoints map[string]*upstream.Client // by endpoint name
}

// Options configure a Pool. Current is required.
type Options struct {
	// Name is the stable consumer name given to the queue backends (the
	// worker's --name, the pod name): a restarted worker with the same name
	// takes back its own pending deliveries.
	Name string
	// Concurrency bounds the jobs processed at once, across all queues;
	// default 16.
	Concurrency int
	// BatchSize is the most jobs taken from a queue by one Receive; default
	// 10, never more than Concurrency.
	BatchSize int
	// Drain is how long in-flight jobs may run on after Run's context is done
	// or their queue is removed; default 30s.
	Drain time.Duration
	// Logger receives the pool's logs; default: discarded.
	Logger *slog.Logger
	// Registry receives the pool's metrics; nil registers nothing.
	Registry prometheus.Registerer
	// Current returns the generation a job attempt uses, and the function
	// that ends that use. It is called once per attempt, and the function
	// once when the attempt has settled the job (stored its outcome and
	// acked, nacked or dead-lettered it). It may return a nil Snapshot
	// before any configuration is loaded; the job is then retried later.
	Current func() (*Snapshot, func())
	// Now and Rand (uniform in [0, 1)) are hooks for tests; defaults
	// time.Now and math/rand/v2.Float64.
	Now  func() time.Time
	Rand func() float64
}

// Pool consumes queues with a bounded number of concurrent jobs. Run,
// Reconcile and the metrics it registers are safe for concurrent use.
//
// Goroutines: Run owns one goroutine per concurrency slot, which runs the
// jobs, and one receive loop per consumed queue; a receive loop owns the
// keeper that extends the leases of its jobs, and waits for its jobs before
// it ends. Run returns only after all of them have stopped.
type Pool struct {
	opts  Options
	log   *slog.Logger
	sem   chan struct{} // a slot per concurrent job, shared by all queues
	tasks chan task     // received jobs for the job goroutines; as many places as slots
	m     *metrics
	logs  *throttle
	now   func() time.Time
	rand  func() float64
	batch int

	mu      sync.Mutex
	state   int                 // stateIdle, stateRunning, stateStopped
	desired map[string]Consumer // the queues Reconcile asked for
	runners map[string]*runner  // the queues being consumed
	wg      sync.WaitGroup      // every runner, including removed ones still draining
}

const (
	stateIdle = iota
	stateRunning
	stateStopped
)

// ErrRunning is returned by a second call to Run.
var ErrRunning = errors.New("worker pool already started")

// New checks the options and registers the metrics.
func New(opts Options) (*Pool, error) {
	if opts.Current == nil {
		return nil, errors.New("workerpool: Current is required")
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 10
	}
	if opts.Drain <= 0 {
		opts.Drain = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	p := &Pool{
		opts:    opts,
		log:     opts.Logger,
		sem:     make(chan struct{}, opts.Concurrency),
		logs:    newThrottle(10*time.Second, opts.Now),
		now:     opts.Now,
		rand:    opts.Rand,
		batch:   min(opts.BatchSize, opts.Concurrency),
		tasks:   make(chan task, opts.Concurrency),
		desired: map[string]Consumer{},
		runners: map[string]*runner{},
	}
	stats := newStatsCollector(p.consumers, func(q string, err error) {
		p.logs.log(p.log, slog.LevelWarn, "stats:"+q, "queue stats failed", keyQueue, q, keyErr, err)
	})
	m, err := newMetrics(opts.Registry, stats)
	if err != nil {
		return nil, err
	}
	p.m = m
	return p, nil
}

// Run consumes the queues given to Reconcile until ctx is done. Then it stops
// receiving, lets jobs in flight finish within Options.Drain and returns once
// every goroutine it started has stopped. Jobs not finished are never acked:
// the backend delivers them again after their lease. A request still waiting
// for the app when Drain ends is abandoned (neither stored nor acked), but
// Run still waits for the HTTP exchange to end, which its deadline (the
// route's or endpoint's timeout) bounds, because fasthttp cannot cancel it.
//
// Close the queues and the result store only after Run has returned. Run
// returns nil after a shutdown, and ErrRunning when called twice.
func (p *Pool) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.state != stateIdle {
		p.mu.Unlock()
		return ErrRunning
	}
	p.state = stateRunning
	var workers sync.WaitGroup
	for range p.opts.Concurrency {
		workers.Go(p.work)
	}
	for name, c := range p.desired {
		p.startLocked(name, c)
	}
	p.mu.Unlock()

	<-ctx.Done()

	// Shutdown order: stop every receive loop at once (no new job starts),
	// then each loop waits for its jobs up to Drain and abandons the rest;
	// then the job goroutines, idle by now, end.
	p.mu.Lock()
	p.state = stateStopped
	for name, r := range p.runners {
		r.stop()
		delete(p.runners, name)
	}
	p.mu.Unlock()
	p.wg.Wait()
	close(p.tasks)
	workers.Wait()
	return nil
}

// task is a received delivery waiting for a job goroutine.
type task struct {
	r *runner
	d *backends.Delivery
}

// work runs tasks until Run closes the channel. The job goroutines live as
// long as Run, one per concurrency slot: a job does not pay for starting a
// goroutine and growing its stack.
func (p *Pool) work() {
	a := new(attempt)
	for t := range p.tasks {
		p.handle(t.r, t.d, a)
		// Keep the buffers, not the generation, delivery and records of
		// the job: an idle goroutine pins nothing that was retired.
		*a = attempt{uri: a.uri[:0]}
		p.release(1)
		t.r.jobs.Done()
	}
}

// Reconcile makes the pool consume exactly the given queues, by name: it
// starts a consumer for an added queue, stops one whose queue was removed
// (it stops receiving and drains its jobs, like Run at shutdown), and keeps
// one whose Consumer is the same value (==) as before. A queue whose
// Consumer value changed is drained on the old value and consumed on the new
// one. Consumers should be pointers (comparable values); a non-comparable
// one is always treated as changed.
//
// Reconcile may be called before Run (Run starts the queues) and does not
// block. The returned channel is closed when every consumer stopped by this
// call has finished its jobs, after which the caller may close the old
// queue clients. The map is not retained.
func (p *Pool) Reconcile(queues map[string]Consumer) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.desired = make(map[string]Consumer, len(queues))
	for name, c := range queues {
		p.desired[name] = c
	}
	done := make(chan struct{})
	if p.state != stateRunning {
		close(done)
		return done
	}
	var stopped []*runner
	for name, r := range p.runners {
		if c, ok := queues[name]; ok && sameConsumer(c, r.c) {
			continue
		}
		r.stop()
		delete(p.runners, name)
		stopped = append(stopped, r)
	}
	for name, c := range queues {
		if _, ok := p.runners[name]; !ok {
			p.startLocked(name, c)
		}
	}
	if len(stopped) == 0 {
		close(done)
		return done
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for _, r := range stopped {
			<-r.done
		}
		close(done)
	}()
	return done
}

// consumers returns a snapshot of the queues being consumed.
func (p *Pool) consumers() map[string]Consumer {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]Consumer, len(p.runners))
	for name, r := range p.runners {
		out[name] = r.c
	}
	return out
}

func sameConsumer(a, b Consumer) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta != nil && ta.Comparable() && a == b
}

// runner consumes one queue.
type runner struct {
	queue  string
	c      Consumer
	keeper *keeper
	active prometheus.Gauge
	m      *metrics
	series sync.Map // endpoint name → *jobMetrics

	recvCtx    context.Context // done: stop receiving
	stopRecv   context.CancelFunc
	jobCtx     context.Context // done: abandon jobs (Drain has passed)
	cancelJobs context.CancelFunc
	jobs       sync.WaitGroup
	done       chan struct{} // closed when the loop and its jobs have stopped
}

func (r *runner) stop() { r.stopRecv() }

// jobMetrics are the series one job updates, looked up once per runner and
// endpoint rather than once per job.
type jobMetrics struct {
	duration                   prometheus.Observer
	completed, retried, failed prometheus.Counter
}

func (r *runner) metrics(endpoint string) *jobMetrics {
	if m, ok := r.series.Load(endpoint); ok {
		return m.(*jobMetrics)
	}
	m, _ := r.series.LoadOrStore(endpoint, &jobMetrics{
		duration:  r.m.duration.WithLabelValues(r.queue, endpoint),
		completed: r.m.jobs.WithLabelValues(r.queue, endpoint, outcomeCompleted),
		retried:   r.m.jobs.WithLabelValues(r.queue, endpoint, outcomeRetried),
		failed:    r.m.jobs.WithLabelValues(r.queue, endpoint, outcomeFailed),
	})
	return m.(*jobMetrics)
}

func (p *Pool) startLocked(name string, c Consumer) {
	r := &runner{queue: name, c: c, done: make(chan struct{}), m: p.m, active: p.m.active.WithLabelValues(name)}
	r.recvCtx, r.stopRecv = context.WithCancel(context.Background())
	r.jobCtx, r.cancelJobs = context.WithCancel(context.Background())
	r.keeper = newKeeper(p, r)
	p.runners[name] = r
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(r.done)
		// Stop order: no more receives, then the jobs finish (or are
		// abandoned after Drain), then the keeper of their leases stops.
		defer r.keeper.stop()
		p.receiveLoop(r)
		p.drain(r)
	}()
	p.log.Info("consuming queue", keyQueue, name, "consumer", p.opts.Name)
}

// drain waits for r's jobs up to Drain, then abandons the rest.
func (p *Pool) drain(r *runner) {
	defer r.cancelJobs()
	finished := make(chan struct{})
	go func() { // owned here: ends when the jobs end, and drain waits for it
		r.jobs.Wait()
		close(finished)
	}()
	t := time.NewTimer(p.opts.Drain)
	defer t.Stop()
	select {
	case <-finished:
	case <-t.C:
		p.log.Warn("drain time over; abandoning jobs in flight, they will be delivered again",
			keyQueue, r.queue, "drain", p.opts.Drain)
		r.cancelJobs()
		<-finished
	}
	p.log.Info("stopped consuming queue", keyQueue, r.queue)
}

// receiveLoop takes jobs from r's queue until r is stopped. It reserves
// concurrency slots before receiving, so a received job starts at once and
// never waits, leased, for a slot.
func (p *Pool) receiveLoop(r *runner) {
	failures := 0
	for {
		n, ok := p.acquire(r.recvCtx)
		if !ok {
			return
		}
		ds, err := r.c.Receive(r.recvCtx, p.opts.Name, n)
		if err != nil {
			p.release(n)
			if r.recvCtx.Err() != nil {
				return
			}
			if errors.Is(err, backends.ErrClosed) {
				p.log.Error("queue closed; its consumer stops", keyQueue, r.queue, keyErr, err)
				return
			}
			failures++
			p.m.errors.WithLabelValues(r.queue, "", "receive").Inc()
			p.logs.log(p.log, slog.LevelError, "receive:"+r.queue, "receive failed; retrying",
				keyQueue, r.queue, keyErr, err, "failures", failures)
			if !sleep(r.recvCtx, receiveBackoff(failures, p.rand)) {
				return
			}
			continue
		}
		failures = 0
		if len(ds) < n {
			p.release(n - len(ds))
		}
		for i, d := range ds {
			if i >= n { // more than asked for: wait for a slot
				p.sem <- struct{}{}
			}
			r.jobs.Add(1)
			p.tasks <- task{r, d} // never blocks: a task holds a slot, and there are as many places as slots
		}
	}
}

// acquire reserves one slot, waiting for it, and up to batch-1 more that are
// free now. It reports false when ctx is done first.
func (p *Pool) acquire(ctx context.Context) (int, bool) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, false
	}
	n := 1
	for n < p.batch {
		select {
		case p.sem <- struct{}{}:
			n++
		default:
			return n, true
		}
	}
	return n, true
}

func (p *Pool) release(n int) {
	for range n {
		<-p.sem
	}
}

// receiveBackoff is the pause after the n-th consecutive Receive failure:
// 100ms doubling to 5s, with jitter in [d/2, d].
func receiveBackoff(n int, rnd func() float64) time.Duration {
	d := 5 * time.Second
	if n < 7 {
		d = min(d, 100*time.Millisecond<<(n-1))
	}
	return d/2 + time.Duration(rnd()*float64(d/2))
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
