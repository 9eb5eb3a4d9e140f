package router

import (
	"math"
	"sync"
	"time"

	"github.com/openhqm/openhqm/config"
)

// bucket is a token bucket of one route. It is safe for concurrent use and
// kept across generations while the route's rate_limit is unchanged.
type bucket struct {
	cfg config.RateLimit

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newBucket(cfg config.RateLimit) *bucket {
	if cfg.Burst <= 0 {
		cfg.Burst = int(math.Ceil(cfg.RequestsPerSecond))
	}
	return &bucket{cfg: cfg, tokens: float64(cfg.Burst), last: time.Now()}
}

// take consumes a token. When none is left it returns false and the whole
// seconds after which one will be available (at least 1), for Retry-After.
func (b *bucket) take(now time.Time) (bool, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(float64(b.cfg.Burst), b.tokens+el*b.cfg.RequestsPerSecond)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if b.cfg.RequestsPerSecond <= 0 {
		return false, 60
	}
	wait := int(math.Ceil((1 - b.tokens) / b.cfg.RequestsPerSecond))
	return false, max(wait, 1)
}
