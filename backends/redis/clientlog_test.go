package redis

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// The client library's messages become one warning a second in the
// process's own log, not a plain-text line per failed dial.
func TestClientLogIsRateLimited(t *testing.T) {
	var buf bytes.Buffer
	l := &clientLog{log: slog.New(slog.NewJSONHandler(&buf, nil))}
	for range 50 {
		l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %s", 2, "connection refused")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"level":"WARN"`) || !strings.Contains(lines[0], "failed to dial after 2 attempts") {
		t.Fatalf("50 messages logged as %d lines: %q; want one JSON warning with the message", len(lines), buf.String())
	}
}
