package kafka

import (
	"testing"
	"time"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/backendtest"
)

// TestConformance runs the shared queue suite against one in-process broker;
// every queue name gets its own topics (one partition, so one consumer sees
// jobs in order) and its own group.
func TestConformance(t *testing.T) {
	brokers := startCluster(t, 1)
	backendtest.RunQueue(t, func(t *testing.T, cfg backendtest.QueueConfig) backends.Queue {
		opts := testOptions(brokers)
		opts.Name = cfg.Name
		opts.Topic = cfg.Name
		opts.Group = cfg.Name + "-workers"
		opts.Lease = cfg.Lease
		opts.MaxDepth = int64(cfg.MaxDepth)
		// A rebalance waits this long for held jobs (ExtendKeepsLease holds
		// one for 3s while a second consumer joins).
		opts.RevokeTimeout = 10 * time.Second
		opts.CreateTopics = true
		opts.Partitions = 1
		q, err := New(opts)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return q
	}, backendtest.Ordered, backendtest.DetectsLeaseLoss, backendtest.Durable, backendtest.ExactDepth)
}

// TestInspectorConformance runs the operator tooling's suite: the backlog
// listed, dead letters listed, redriven once and purged through the
// redrive group's commits.
func TestInspectorConformance(t *testing.T) {
	brokers := startCluster(t, 1)
	backendtest.RunInspector(t, func(t *testing.T, cfg backendtest.QueueConfig) backends.Queue {
		opts := testOptions(brokers)
		opts.Name, opts.Topic, opts.Group = cfg.Name, cfg.Name, cfg.Name+"-workers"
		opts.Lease = cfg.Lease
		opts.CreateTopics = true
		opts.Partitions = 2
		q, err := New(opts)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return q
	}, backendtest.ListsBacklog)
}
