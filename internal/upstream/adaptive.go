package upstream

import (
	"math"
	"time"
)

// gradient is an endpoint's adaptive concurrency limit (adaptive_concurrency):
// a gradient limit in the manner of Netflix's concurrency-limits, moved by
// what this process alone sees of the app's latency, so that N processes
// sending to one app back off together without talking to each other.
//
// The limit starts at initialLimit (within [min, max]) and is moved at the
// end of each window of at least max(minWindow, limit/2) completed
// requests:
//
//   - the app's unloaded latency (baseline) takes the window's average
//     when that is lower;
//   - a window with a 429/503 answer, or a timeout, cuts the limit by
//     dropFactor. A timeout counts only when its budget was at least
//     tolerance × baseline: a request whose caller left it less time
//     (it waited for its slot, or its route's timeout is short) says
//     nothing of the app, and is not counted at all;
//   - a window that used under half the limit leaves it alone: the app was
//     not what held the requests back;
//   - otherwise gradient = clamp(tolerance × baseline / average, 0.5, 1),
//     and the limit moves a fifth of the way toward limit × gradient +
//     √limit: it grows by about √limit/5 a window while the app keeps its
//     latency within tolerance, and shrinks as the latency climbs past it.
//
// Every probeEvery windows one window runs at limit / (2 × tolerance),
// counting only requests that end with at most that many in flight, and
// its average becomes the baseline: below the app's saturation point that
// is its unloaded latency, which may have risen for good (a slower release
// of the app) or fallen. At the equilibrium the limit sits near tolerance /
// (1 - 1/√limit) times the app's saturation point, so the probe runs under
// it, and a baseline measured past it cannot ratchet the limit up.
//
// The limit stays within [min, max]; the limiter admits floor(limit).
type gradient struct {
	min, max  float64
	tolerance float64
	limit     float64
	baseline  float64 // seconds; 0 until the first window
	windows   int     // since the last probe
	probing   bool

	n, ok   int     // samples in the window, and those with a latency
	sum     float64 // seconds, of the ok samples
	dropped bool
	peak    int // most slots in use at a sample of the window
}

const (
	initialLimit = 4
	minWindow    = 4
	dropFactor   = 0.9
	smoothing    = 0.2
	probeEvery   = 100
)

func newGradient(lo, hi int, tolerance float64) *gradient {
	if tolerance < 1 {
		tolerance = 1.5
	}
	lo = min(max(lo, 1), hi)
	return &gradient{min: float64(lo), max: float64(hi), tolerance: tolerance,
		limit: float64(min(max(initialLimit, lo), hi))}
}

// current is the number of requests admitted now: the limit, or less
// during a probe.
func (g *gradient) current() int {
	if g.probing {
		return max(int(g.min), int(g.limit/(2*g.tolerance)))
	}
	return int(g.limit)
}

// outcome is how a request sent to the app ended, for the gradient.
type outcome uint8

const (
	answered   outcome = iota // the app answered (other than 429/503)
	overloaded                // the app answered 429 or 503
	timedOut                  // no answer within the request's budget (its latency)
)

// sample adds one completed request: its latency, how it ended, and the
// slots in use as it ended. It answers the number of requests to admit
// from now at the end of a window, else 0.
func (g *gradient) sample(latency time.Duration, o outcome, inUse int) int {
	if g.probing && inUse > g.current() {
		return 0 // still draining down to the probe's limit
	}
	if o == timedOut && (g.baseline == 0 || latency.Seconds() < g.tolerance*g.baseline) {
		return 0 // its budget was too short to tell
	}
	g.n++
	if o != answered {
		g.dropped = true
	} else {
		g.ok++
		g.sum += latency.Seconds()
	}
	g.peak = max(g.peak, inUse)
	if g.n < max(minWindow, g.current()/2) {
		return 0
	}
	g.close()
	return g.current()
}

func (g *gradient) close() {
	if g.ok > 0 {
		avg := g.sum / float64(g.ok)
		switch {
		case g.probing:
			g.baseline = avg
		case g.baseline == 0 || avg < g.baseline:
			g.baseline = avg
		}
		if !g.dropped && !g.probing && float64(g.peak) >= g.limit/2 {
			grad := min(max(g.tolerance*g.baseline/avg, 0.5), 1)
			target := g.limit*grad + math.Sqrt(g.limit)
			g.limit += (target - g.limit) * smoothing
		}
	}
	if g.dropped {
		g.limit *= dropFactor
	}
	g.limit = min(max(g.limit, g.min), g.max)
	g.windows++
	g.probing = !g.probing && g.windows%probeEvery == 0
	g.n, g.ok, g.sum, g.dropped, g.peak = 0, 0, 0, false, 0
}
