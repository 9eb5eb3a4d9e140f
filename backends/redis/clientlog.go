package redis

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// LogClientTo sends the Redis client library's own messages (a failed
// dial, a sentinel switching primaries) to log as warnings, at most one a
// second: during a failover it would otherwise print a plain-text line per
// failed connection attempt. The library's logger is process-wide, so the
// program calls this once, at start.
func LogClientTo(log *slog.Logger) {
	goredis.SetLogger(&clientLog{log: log})
}

type clientLog struct {
	log  *slog.Logger
	last atomic.Int64 // unix ns of the last message logged
}

func (l *clientLog) Printf(ctx context.Context, format string, v ...any) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(time.Second) || !l.last.CompareAndSwap(last, now) {
		return
	}
	l.log.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}
