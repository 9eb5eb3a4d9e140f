package redis

import "strconv"

// Key layout. Every key name of the package is made here.
//
// A queue is one shard, or Shards shards. A shard is a stream and the keys
// that go with it (its delayed jobs, their fields, its dead letters); the
// scripts touch several of them at once, so on a cluster they share one hash
// tag, and the tags of different shards differ, so that the cluster spreads
// the shards over its primaries.
//
// A queue of one shard that is not on a cluster keeps the names of earlier
// releases (no tag): S, S:delayed, S:delayed-jobs, S:cancelled and the
// dead-letter stream D. Otherwise shard i of stream S is tagged {S:i}:
// {S:i}, {S:i}:delayed, {S:i}:delayed-jobs, {S:i}:cancelled and D:{S:i}.
//
// A result record and its tombstone are written together by one script, so
// on a cluster they share a tag, the job id: P{id} and Ptomb:{id}; elsewhere
// they are P+id and Ptomb:+id as before. The idempotency key of a submit is
// one key, P+"idem:"+key, everywhere.

// shardKeys are the keys of one shard, in the order the scripts take them.
type shardKeys struct {
	stream      string // the stream of jobs waiting or leased
	delayed     string // sorted set of job ids waiting for a retry, scored by due time (unix ms)
	delayedJobs string // hash of those jobs' fields
	deadLetter  string // the dead-letter stream
	cancelled   string // set of the ids of jobs cancelled while they waited (inspect.go)
}

// queueKeys returns the keys of each shard of the queue with stream and
// dead-letter stream deadLetter. tagged is true on a cluster.
func queueKeys(stream, deadLetter string, shards int, tagged bool) []shardKeys {
	if shards <= 1 && !tagged {
		return []shardKeys{{stream, stream + ":delayed", stream + ":delayed-jobs", deadLetter, stream + ":cancelled"}}
	}
	out := make([]shardKeys, max(shards, 1))
	for i := range out {
		tag := "{" + stream + ":" + strconv.Itoa(i) + "}"
		out[i] = shardKeys{tag, tag + ":delayed", tag + ":delayed-jobs", deadLetter + ":" + tag, tag + ":cancelled"}
	}
	return out
}

// recordKey is the record of job id under prefix, tombKey its tombstone.
func recordKey(prefix, id string, tagged bool) string {
	if tagged {
		return prefix + "{" + id + "}"
	}
	return prefix + id
}

func tombKey(prefix, id string, tagged bool) string {
	if tagged {
		return prefix + "tomb:{" + id + "}"
	}
	return prefix + "tomb:" + id
}

// idemKey binds a client's Idempotency-Key to a job.
func idemKey(prefix, key string) string { return prefix + "idem:" + key }
