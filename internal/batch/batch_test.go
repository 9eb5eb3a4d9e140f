package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openhqm/openhqm/backends"
)

// Concurrent calls share round trips, each gets its own answer, and a
// round trip never holds more than MaxItems or (beyond its first item)
// MaxBytes.
func TestCallsShareRoundTrips(t *testing.T) {
	var trips, most atomic.Int32
	release := make(chan struct{})
	b := New(Options{MaxItems: 8, MaxBytes: 100}, func(n int) int { return n % 50 }, func(ctx context.Context, calls []*Call[int]) {
		trips.Add(1)
		<-release // the first round trips wait, so that the other calls queue up
		size := 0
		for _, c := range calls {
			size += c.Item % 50
			if c.Item%7 == 0 {
				c.Err = fmt.Errorf("item %d refused", c.Item)
			}
		}
		if size-calls[len(calls)-1].Item%50 >= 100 {
			t.Errorf("a round trip of %d bytes kept taking items past MaxBytes", size)
		}
		for {
			m := most.Load()
			if int32(len(calls)) <= m || most.CompareAndSwap(m, int32(len(calls))) {
				break
			}
		}
	})
	defer b.Close()
	const n = 200
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = b.Do(context.Background(), i) })
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	for i, err := range errs {
		if (i%7 == 0) != (err != nil) {
			t.Errorf("call %d answered %v", i, err)
		}
	}
	if got := trips.Load(); got >= n || got < n/8 {
		t.Errorf("%d round trips for %d calls; want them grouped, at most 8 a trip", got, n)
	}
	if m := most.Load(); m > 8 || m < 2 {
		t.Errorf("largest round trip %d calls, want 2..8", m)
	}
}

// A call whose context ends before it is sent is dropped; Close sends what
// is queued and refuses the rest.
func TestCancelAndClose(t *testing.T) {
	release := make(chan struct{})
	var sent sync.Map
	b := New(Options{Senders: 1}, nil, func(ctx context.Context, calls []*Call[string]) {
		for _, c := range calls {
			if c.Item == "block" {
				<-release
			}
			sent.Store(c.Item, true)
		}
	})
	go b.Do(context.Background(), "block")
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Do(ctx, "cancelled") }()
	queued := make(chan error, 1)
	go func() { queued <- b.Do(context.Background(), "queued") }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call = %v, want context.Canceled", err)
	}
	close(release)
	b.Close()
	if err := <-queued; err != nil {
		t.Errorf("call queued before Close = %v, want it sent", err)
	}
	if _, ok := sent.Load("cancelled"); ok {
		t.Error("a call cancelled before it was sent was sent")
	}
	if err := b.Do(context.Background(), "late"); !errors.Is(err, backends.ErrClosed) {
		t.Errorf("Do after Close = %v, want ErrClosed", err)
	}
}

func TestSend(t *testing.T) {
	err := Send(context.Background(), func(ctx context.Context, calls []*Call[int]) {
		if len(calls) != 1 || calls[0].Item != 7 {
			t.Errorf("calls = %v", calls)
		}
		calls[0].Err = errors.New("seven")
	}, 7)
	if err == nil || err.Error() != "seven" {
		t.Errorf("Send = %v", err)
	}
}
