package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/jobs"
)

// ErrMemoryBackend means `openhqm jobs` cannot reach the memory backend, which
// lives in the serving process.
var ErrMemoryBackend = errors.New("the memory backend lives in the memory of the serving process, which this command cannot reach; " +
	"use that process's admin pages instead: GET /-/queues (stats), GET /-/jobs?queue=Q&state=S (ls), GET /-/jobs/ID (show), " +
	"DELETE /-/jobs/ID (cancel), POST /-/queues/Q/redrive, POST /-/queues/Q/purge")

// queueOf answers the function that names the queue of a route's jobs in
// cfg (the submit API's for "" and its own name).
func queueOf(cfg *config.Config) func(route string) string {
	return func(route string) string {
		if route == "" || route == "(submit_api)" {
			if cfg.SubmitAPI != nil {
				return cfg.SubmitAPI.Queue
			}
			return ""
		}
		for _, r := range cfg.Routes {
			if r.Name == route {
				return r.Queue
			}
		}
		return ""
	}
}

// jobsService is the operator's tooling over a generation's backends.
func jobsService(cfg *config.Config, queues map[string]*queueHandle, results backends.ResultStore) *jobs.Service {
	s := &jobs.Service{QueueOf: queueOf(cfg), TTL: cfg.Results.TTL}
	if st, ok := results.(jobs.Store); ok {
		s.Results = st
	}
	for _, name := range sortedKeys(queues) {
		s.Queues = append(s.Queues, jobs.Queue{Name: name, Backend: string(queues[name].cfg.Backend), Q: queues[name].q})
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// OpenJobs opens the queues named by only (every queue of cfg when empty)
// and the result store, for `openhqm jobs`. A memory queue or result store
// answers ErrMemoryBackend. The returned function closes what it opened.
func OpenJobs(ctx context.Context, cfg *config.Config, only []string, log *slog.Logger) (*jobs.Service, func(), error) {
	if cfg.Results.Backend == config.BackendMemory {
		return nil, nil, fmt.Errorf("results: %w", ErrMemoryBackend)
	}
	names := only
	if len(names) == 0 {
		names = sortedKeys(cfg.Queues)
	}
	var closers []func() error
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	queues := make(map[string]*queueHandle, len(names))
	for _, name := range names {
		qc := cfg.Queues[name]
		if qc == nil {
			closeAll()
			return nil, nil, fmt.Errorf("%w %q (configured: %v)", jobs.ErrNoQueue, name, sortedKeys(cfg.Queues))
		}
		if qc.Backend == config.BackendMemory {
			closeAll()
			return nil, nil, fmt.Errorf("queue %q: %w", name, ErrMemoryBackend)
		}
		q, err := openQueue(ctx, qc, resultsLayout(qc, &cfg.Results), "openhqm-jobs", log)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("queue %q: %w", name, err)
		}
		closers = append(closers, q.Close)
		queues[name] = &queueHandle{cfg: *qc, q: q}
	}
	rs, err := openResults(ctx, &cfg.Results)
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("results: %w", err)
	}
	closers = append(closers, rs.Close)
	return jobsService(cfg, queues, rs), closeAll, nil
}
