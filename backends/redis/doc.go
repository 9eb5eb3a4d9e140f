// Package redis is the durable queue (a Redis stream with a consumer
// group) and the Redis result store.
//
// Keys, for a queue with stream S (keys.go makes every key name; a queue
// of several shards, or on a Redis Cluster, tags each shard's keys):
//
//	S                 the stream: one entry per job waiting or leased (codec.go)
//	S:delayed         sorted set of job ids waiting for a retry, scored by due time (unix ms)
//	S:delayed-jobs    hash holding those jobs' fields
//	DeadLetter        the dead-letter stream (default S:dlq), trimmed to DeadLetterMax
//
// and for a result store with prefix P: P+id (the record: one string per
// job; earlier releases wrote a hash, which is still read), P+"tomb:"+id
// (written when the record becomes completed or failed, and outliving it),
// P+"idem:"+key.
//
// A queue built with Options.Results (the store's Layout) writes records
// itself: a pending record in the same script as the job's XADD
// (ResultsQueue.EnqueueWithResult), so a submit costs one round trip, and a
// worker's outcome in the same script as its ack (AckWithResult). The store
// must be on the same Redis database.
//
// Round trips are shared: concurrent Enqueue calls are grouped into one
// script call, and so are concurrent Ack and AckWithResult calls of a queue
// and concurrent Create and Update calls of a store (BatchOptions).
//
// Requirements: Redis 7.0 or later (XAUTOCLAIM, SET NX GET).
//
// High availability: Options.Sentinel finds the primary through Redis
// Sentinel and follows a failover; Options.Cluster runs on a Redis Cluster,
// where each shard's keys share a hash tag (so its scripts run on one node)
// and each record's keys share the job id's tag, so that a cluster spreads
// shards and records over its primaries. On a cluster, records are written
// by the store in round trips of their own (grouped per primary), never in
// the queue's scripts. Options.Shards splits a queue over several streams:
// producers pick a shard in turn (skipping one whose primary just failed)
// or by Job.Key, consumers read every shard in turn; jobs keep their order
// within a shard only.
//
// Replicas (Options.Replicas, ResultsOptions.Replicas) makes a write wait
// for replicas (WAIT, on the connection that wrote) before it counts: a
// submit that they do not confirm in time answers ErrUnavailable, so the
// client gets 503, but the primary did store the job and it still runs if
// that primary survives. That is the at-least-once case: a client that
// retries such a submit with the same Idempotency-Key gets the same job id
// (the job may then be stored twice, and run twice under that id), one
// without gets a second job; the app sees a job's id as Idempotency-Key
// on every attempt, so it can tell.
//
// Durability: a job is stored once Enqueue returns. Whether it survives a
// crash of the Redis host is Redis's persistence setting: run it with
// appendonly yes (appendfsync everysec loses at most about a second of
// writes on a host crash; a graceful restart loses nothing).
package redis
