package kafka

import (
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/wire"
)

// Record layout. The record value is the job's wire encoding behind the tag
// "OHQ", with the version byte written as an ASCII digit:
//
//	"OHQ1" then the fields and the body of wire version 1
//
// which is byte for byte the layout records had before the codec was shared,
// so processes of either release read each other's records during a rolling
// upgrade (an undecodable record is dropped, see admit). The body is the
// rest of the value, never re-encoded.
//
// Delivery state travels in record headers, readable with any Kafka tool:
// the job id, the attempt number of the next delivery and, on the retry
// topic, the due time; dead letters carry their reason and last answer.
const (
	tag = "OHQ"

	hdrID         = "openhqm-id"
	hdrAttempt    = "openhqm-attempt"     // decimal, 1-based attempt of the next delivery
	hdrDue        = "openhqm-due"         // decimal Unix milliseconds
	hdrReason     = "openhqm-reason"      // dead letters
	hdrAttempts   = "openhqm-attempts"    // dead letters: attempts made
	hdrDeadAt     = "openhqm-dead-at"     // dead letters: Unix milliseconds
	hdrLastStatus = "openhqm-last-status" // dead letters: last upstream status, when any
	hdrLastBody   = "openhqm-last-body"   // dead letters: last upstream body, when any
)

// The version is one ASCII digit after the tag: a wire version above 9 needs
// another spelling, and this fails to compile until it has one.
const _ = uint(9 - wire.Version)

// encodeJob returns the record value of job. The result does not alias job.
func encodeJob(job *backends.Job) []byte {
	b := make([]byte, len(tag), len(tag)+wire.Size(job))
	copy(b, tag)
	b = wire.AppendJob(b, job)
	b[len(tag)] += '0' // the version byte, as a digit
	return b
}

// decodeJob parses a record value written by encodeJob. The returned job
// does not alias b. Errors wrap wire.ErrMalformed.
func decodeJob(b []byte) (*backends.Job, error) {
	if len(b) <= len(tag) || string(b[:len(tag)]) != tag || b[len(tag)] < '0' || b[len(tag)] > '9' {
		return nil, fmt.Errorf("%w: not an openhqm record", wire.ErrMalformed)
	}
	return wire.DecodeVersion(b[len(tag)]-'0', b[len(tag)+1:])
}

// header returns the value of the record header named key, or nil.
func header(hs []*sarama.RecordHeader, key string) []byte {
	for _, h := range hs {
		if h != nil && string(h.Key) == key {
			return h.Value
		}
	}
	return nil
}

// headerInt parses a decimal header; ok is false when it is absent or invalid.
func headerInt(hs []*sarama.RecordHeader, key string) (int64, bool) {
	v := header(hs, key)
	if v == nil {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}

// DecodeDeadLetter parses a record of the dead-letter topic, for tools that
// inspect or replay dead letters. The result does not alias msg.
func DecodeDeadLetter(msg *sarama.ConsumerMessage) (*backends.DeadLetter, error) {
	job, err := decodeJob(msg.Value)
	if err != nil {
		return nil, err
	}
	dl := &backends.DeadLetter{Job: job, Reason: string(header(msg.Headers, hdrReason))}
	if n, ok := headerInt(msg.Headers, hdrAttempts); ok {
		dl.Attempts = int(n)
	}
	if n, ok := headerInt(msg.Headers, hdrDeadAt); ok {
		dl.At = time.UnixMilli(n).UTC()
	}
	if n, ok := headerInt(msg.Headers, hdrLastStatus); ok {
		dl.LastStatus = int(n)
	}
	if b := header(msg.Headers, hdrLastBody); len(b) > 0 {
		dl.LastBody = append([]byte(nil), b...)
	}
	return dl, nil
}

func itoa(n int64) []byte { return strconv.AppendInt(nil, n, 10) }
