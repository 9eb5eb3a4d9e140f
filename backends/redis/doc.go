// Package redis is the durable queue (a Redis stream with a consumer
// group) and the Redis result store.
//
// Keys, for a queue with stream S:
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
// Requirements: Redis 7.0 or later (XAUTOCLAIM, SET NX GET). The scripts
// touch several keys at once; on Redis Cluster put the stream name in a hash
// tag (Stream "{jobs}", DeadLetter "{jobs}:dlq") and the result Prefix in
// one too ("{jobs}result:"), so that a record, its tombstone and the stream
// share a slot, and so that grouped writes of several records do.
//
// Durability: a job is stored once Enqueue returns. Whether it survives a
// crash of the Redis host is Redis's persistence setting: run it with
// appendonly yes (appendfsync everysec loses at most about a second of
// writes on a host crash; a graceful restart loses nothing).
package redis
