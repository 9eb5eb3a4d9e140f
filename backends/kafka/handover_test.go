package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/openhqm/openhqm/backends"
)

// TestWorkerDiesWithSlowJob: on one partition, jobs 1..3 finish while job 0
// is still running, then the worker dies. The committed offset never passes
// job 0; the next member gets job 0 again (attempt 2) and none of the
// finished ones; once it finishes, the partition commits to the end.
func TestWorkerDiesWithSlowJob(t *testing.T) {
	brokers := startCluster(t, 1)
	qa, err := New(testOptions(brokers))
	if err != nil {
		t.Fatal(err)
	}
	defer qa.Close()
	jobs := []*backends.Job{newJob("k", "slow"), newJob("k", "1"), newJob("k", "2"), newJob("k", "3")}
	enqueue(t, qa, jobs...)

	// Watch the committed offset for the whole test. slowDone is set before
	// job 0 is acked and read after each fetch returned: an offset fetched
	// while it still reads false was committed while job 0 was unfinished.
	// (Read before the fetch, it would blame the commit that follows the ack
	// whenever the ack lands while a fetch is under way.)
	var slowDone atomic.Bool
	var maxBeforeSlow atomic.Int64
	maxBeforeSlow.Store(-1)
	stopWatch := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(10 * time.Millisecond):
			}
			off, _, err := fetchCommitted(brokers, testTopic, 0)
			if err != nil {
				t.Errorf("watch the committed offset: %v", err)
				return
			}
			if !slowDone.Load() && off > maxBeforeSlow.Load() {
				maxBeforeSlow.Store(off)
			}
		}
	}()
	defer func() {
		close(stopWatch)
		watch.Wait()
		if m := maxBeforeSlow.Load(); m > 0 {
			t.Errorf("committed offset reached %d while job 0 was unfinished", m)
		}
	}()

	ds := receiveN(t, qa, "a", 4, 10*time.Second)
	var finished []string
	for _, d := range ds[1:] {
		ack(t, qa, d)
		finished = append(finished, d.Job.ID)
	}
	eventually(t, 5*time.Second, "finished-above-base recorded in the commit", func() (bool, string) {
		off, meta := committed(t, brokers, testTopic, 0)
		return off == 0 && meta == "ohq1;0:1,1,2,3", fmtOffsets(off, meta)
	})

	// Worker a dies holding job 0.
	if err := qa.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := qa.Ack(context.Background(), ds[0]); !errors.Is(err, backends.ErrClosed) {
		t.Fatalf("Ack on the dead worker: got %v, want ErrClosed", err)
	}

	qb := newQueue(t, testOptions(brokers))
	again := receiveN(t, qb, "b", 1, 15*time.Second)[0]
	if again.Job.ID != jobs[0].ID || again.Attempt != 2 {
		t.Fatalf("next member got %q attempt %d, want the slow job at attempt 2", again.Job.Body, again.Attempt)
	}
	// Nothing finished comes back.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	extra, err := qb.Receive(ctx, "b", 10)
	cancel()
	if err != nil || len(extra) != 0 {
		t.Fatalf("after the slow job: %d more deliveries (%v), want none", len(extra), err)
	}
	// The watcher's last fetch may predate this point: check once more
	// (every mark made so far has been committed during the wait above).
	if off, meta := committed(t, brokers, testTopic, 0); off > 0 {
		t.Fatalf("before job 0 finished: committed %s", fmtOffsets(off, meta))
	}
	slowDone.Store(true)
	ack(t, qb, again)
	finished = append(finished, again.Job.ID)
	eventually(t, 5*time.Second, "committed to the end", func() (bool, string) {
		off, meta := committed(t, brokers, testTopic, 0)
		return off == 4 && meta == "", fmtOffsets(off, meta)
	})
	want := []string{jobs[1].ID, jobs[2].ID, jobs[3].ID, jobs[0].ID}
	if diff := cmp.Diff(want, finished); diff != "" {
		t.Errorf("finished jobs (-want +got):\n%s", diff)
	}
}

// TestRebalance: a second worker joins mid-run and then leaves; every job
// completes exactly once (a completion is a successful Ack).
func TestRebalance(t *testing.T) {
	brokers := startCluster(t, 3)
	opts := testOptions(brokers)
	// A small buffer interleaves the partitions, so work remains on each
	// when b joins.
	opts.Buffer = 2
	qa := newQueue(t, opts)
	const n = 90
	var jobs []*backends.Job
	for i := range n {
		jobs = append(jobs, newJob(fmt.Sprintf("key-%d", i%9), fmt.Sprint(i)))
	}
	enqueue(t, qa, jobs...)

	var mu sync.Mutex
	done := map[string]int{}
	by := map[string]int{}
	completed := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(done)
	}
	work := func(q *backends.Queue, name string, stop <-chan struct{}, wg *sync.WaitGroup) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			ds, err := (*q).Receive(ctx, name, 3)
			cancel()
			if err != nil {
				t.Errorf("%s: Receive: %v", name, err)
				return
			}
			for _, d := range ds {
				time.Sleep(50 * time.Millisecond)
				err := (*q).Ack(context.Background(), d)
				if errors.Is(err, backends.ErrLeaseLost) {
					continue // handed over; the next owner delivers it
				}
				if err != nil {
					t.Errorf("%s: Ack: %v", name, err)
					return
				}
				mu.Lock()
				done[d.Job.ID]++
				by[name]++
				mu.Unlock()
			}
		}
	}

	var qaQ backends.Queue = qa
	stopA := make(chan struct{})
	var wgA sync.WaitGroup
	wgA.Add(1)
	go work(&qaQ, "a", stopA, &wgA)
	defer func() { close(stopA); wgA.Wait() }()

	eventually(t, 15*time.Second, "some done by a alone", func() (bool, string) {
		c := completed()
		return c >= n/6, fmt.Sprint(c)
	})
	qb := newQueue(t, opts)
	var qbQ backends.Queue = qb
	stopB := make(chan struct{})
	var wgB sync.WaitGroup
	wgB.Add(1)
	go work(&qbQ, "b", stopB, &wgB)
	eventually(t, 20*time.Second, "b completed some jobs", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return by["b"] >= 5, fmt.Sprint(by)
	})
	close(stopB)
	wgB.Wait()
	if err := qb.Close(); err != nil {
		t.Fatalf("b: Close: %v", err)
	}
	eventually(t, 20*time.Second, "every job completed", func() (bool, string) {
		c := completed()
		return c == n, fmt.Sprint(c)
	})
	mu.Lock()
	defer mu.Unlock()
	for _, j := range jobs {
		if done[j.ID] != 1 {
			t.Errorf("job %s completed %d times", j.Body, done[j.ID])
		}
	}
	t.Logf("completions by worker: %v", by)
}

// TestRevokeHandsOver: when a second worker joins, a job the first one
// holds either finishes within RevokeTimeout (its ack commits and nobody
// gets it again) or is abandoned after it (its ack answers ErrLeaseLost and
// the new owner delivers it with the next attempt number).
func TestRevokeHandsOver(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ackAfter time.Duration // when a acks, after b joined
		wantLost bool
	}{
		{"finished during the hand-over", 100 * time.Millisecond, false},
		{"abandoned after RevokeTimeout", 1500 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			brokers := startCluster(t, 1)
			opts := testOptions(brokers)
			opts.RevokeTimeout = 500 * time.Millisecond
			qa := newQueue(t, opts)
			job := newJob("k", "held")
			enqueue(t, qa, job)
			held := receiveN(t, qa, "a", 1, 10*time.Second)[0]

			qb := newQueue(t, opts)
			// Whichever worker owns the partition afterwards delivers it.
			type delivery struct {
				q *Queue
				d *backends.Delivery
			}
			got := make(chan []delivery, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				var out []delivery
				for ctx.Err() == nil && len(out) == 0 {
					for _, w := range []struct {
						q    *Queue
						name string
					}{{qb, "b"}, {qa, "a"}} {
						rctx, rcancel := context.WithTimeout(ctx, 100*time.Millisecond)
						ds, _ := w.q.Receive(rctx, w.name, 1)
						rcancel()
						for _, d := range ds {
							out = append(out, delivery{w.q, d})
						}
					}
				}
				got <- out
			}()
			time.Sleep(tc.ackAfter)
			err := qa.Ack(context.Background(), held)
			if tc.wantLost != errors.Is(err, backends.ErrLeaseLost) || (!tc.wantLost && err != nil) {
				t.Fatalf("Ack by the old owner: %v (want lease lost: %v)", err, tc.wantLost)
			}
			ds := <-got
			switch {
			case tc.wantLost && (len(ds) != 1 || ds[0].d.Job.ID != job.ID || ds[0].d.Attempt != 2):
				t.Fatalf("after the hand-over: %d deliveries, want the abandoned job at attempt 2", len(ds))
			case !tc.wantLost && len(ds) != 0:
				t.Fatalf("after the hand-over: job %q attempt %d, want nothing (it was finished)", ds[0].d.Job.Body, ds[0].d.Attempt)
			}
			if tc.wantLost {
				ack(t, ds[0].q, ds[0].d)
			}
			eventually(t, 5*time.Second, "committed past the job", func() (bool, string) {
				off, meta := committed(t, brokers, testTopic, 0)
				return off == 1, fmtOffsets(off, meta)
			})
		})
	}
}
