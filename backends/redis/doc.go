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
// and for a result store with prefix P: P+id (one hash per job), P+"tomb:"+id,
// P+"idem:"+key.
//
// A queue built with Options.Results (the store's Layout) writes P+id itself,
// in the same script as the job's XADD (ResultsQueue.EnqueueWithResult), so a
// submit costs one round trip; the store must be on the same Redis database.
//
// Requirements: Redis 7.0 or later (XAUTOCLAIM, SET NX GET). The scripts
// touch several keys at once; on Redis Cluster put the stream name in a hash
// tag (Stream "{jobs}", DeadLetter "{jobs}:dlq", and with Options.Results a
// result Prefix "{jobs}result:") so they share a slot.
//
// Durability: a job is stored once Enqueue returns. Whether it survives a
// crash of the Redis host is Redis's persistence setting: run it with
// appendonly yes (appendfsync everysec loses at most about a second of
// writes on a host crash; a graceful restart loses nothing).
package redis
