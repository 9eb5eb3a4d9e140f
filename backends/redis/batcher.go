package redis

import (
	"time"

	"github.com/openhqm/openhqm/internal/batch"
)

// BatchOptions tunes how concurrent calls share round trips: Enqueue calls
// of a Queue; Ack and AckWithResult calls of a Queue; Create and Update
// calls of a Results store. Each kind is grouped on its own.
type BatchOptions struct {
	// Disabled sends every call on its own round trip.
	Disabled bool
	// MaxJobs per round trip; default 128.
	MaxJobs int
	// MaxBytes of bodies per round trip (a batch always holds at least one
	// call); default 1 MiB.
	MaxBytes int
	// Linger is how long a sender waits for more calls when the batch is not
	// full; default 0: a batch is whatever queued up while the previous round
	// trip was in flight, which adds no latency to a lone caller and measured
	// best (a 100µs linger cut throughput by more than half on a 2-core VM,
	// where timers fire late).
	Linger time.Duration
	// Senders is the number of round trips in flight at once; default 2.
	Senders int
}

// options converts o for package batch.
func (o BatchOptions) options() batch.Options {
	return batch.Options{MaxItems: o.MaxJobs, MaxBytes: o.MaxBytes, Linger: o.Linger, Senders: o.Senders}
}
