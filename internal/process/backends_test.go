package process

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/testredis"
	"github.com/openhqm/openhqm/workerpool"
)

// A Redis queue whose server also holds the results stores each outcome
// with its ack: the worker pool takes that path when the queue it consumes
// writes the records the generation's store reads.
func TestRedisQueueWritesTheStoreItShares(t *testing.T) {
	shared, other := testredis.Start(t), testredis.Start(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rc := config.Results{Backend: config.BackendRedis, RedisURL: shared.URL(), Prefix: "openhqm:", TTL: time.Hour}
	store, err := openResults(ctx, &rc)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, tt := range []struct {
		name string
		url  string
		want bool
	}{
		{"same server", shared.URL(), true},
		{"another server", other.URL(), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			qc := &config.Queue{Name: "jobs", Backend: config.BackendRedis, Lease: time.Minute,
				Redis: &config.RedisQueue{URL: tt.url, Stream: "s", Group: "g"}}
			q, err := openQueue(ctx, qc, resultsLayout(qc, &rc), "w", log)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			ra, ok := q.(workerpool.ResultAcker)
			if got := ok && ra.WritesResults(store); got != tt.want {
				t.Errorf("the queue stores outcomes with its acks: %v, want %v", got, tt.want)
			}
		})
	}
}
