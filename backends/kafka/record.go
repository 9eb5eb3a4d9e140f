package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/IBM/sarama"

	"github.com/openhqm/openhqm/backends"
)

// Record layout. The record value is a compact prefix followed by the raw
// request body, so a body is never re-encoded:
//
//	"OHQ1"
//	uvarint-length-prefixed strings: ID Route Endpoint Queue Method Path Query Principal Key
//	varint CreatedAt (Unix nanoseconds, 0 for the zero time)
//	uvarint header count, then per header: name, value (length-prefixed)
//	body: the rest of the value
//
// Delivery state travels in record headers, readable with any Kafka tool:
// the job id, the attempt number of the next delivery and, on the retry
// topic, the due time; dead letters carry their reason and last answer.
const (
	magic = "OHQ1"

	hdrID         = "openhqm-id"
	hdrAttempt    = "openhqm-attempt"     // decimal, 1-based attempt of the next delivery
	hdrDue        = "openhqm-due"         // decimal Unix milliseconds
	hdrReason     = "openhqm-reason"      // dead letters
	hdrAttempts   = "openhqm-attempts"    // dead letters: attempts made
	hdrDeadAt     = "openhqm-dead-at"     // dead letters: Unix milliseconds
	hdrLastStatus = "openhqm-last-status" // dead letters: last upstream status, when any
	hdrLastBody   = "openhqm-last-body"   // dead letters: last upstream body, when any
)

// maxHeaders bounds the header count a decoder accepts, so a corrupt record
// cannot make it allocate without limit.
const maxHeaders = 4096

var errDecode = errors.New("decode job")

// encodeJob returns the record value of job. The result does not alias job.
func encodeJob(job *backends.Job) []byte {
	n := len(magic) + 10 + 5 + len(job.Body)
	strs := [...]string{job.ID, job.Route, job.Endpoint, job.Queue, job.Method, job.Path, job.Query, job.Principal, job.Key}
	for _, s := range strs {
		n += len(s) + 5
	}
	for _, h := range job.Headers {
		n += len(h.Name) + len(h.Value) + 10
	}
	b := make([]byte, 0, n)
	b = append(b, magic...)
	for _, s := range strs {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	var created int64
	if !job.CreatedAt.IsZero() {
		created = job.CreatedAt.UnixNano()
	}
	b = binary.AppendVarint(b, created)
	b = binary.AppendUvarint(b, uint64(len(job.Headers)))
	for _, h := range job.Headers {
		b = binary.AppendUvarint(b, uint64(len(h.Name)))
		b = append(b, h.Name...)
		b = binary.AppendUvarint(b, uint64(len(h.Value)))
		b = append(b, h.Value...)
	}
	return append(b, job.Body...)
}

// decodeJob parses a record value written by encodeJob. The returned job
// copies what it needs; it does not alias b.
func decodeJob(b []byte) (*backends.Job, error) {
	if len(b) < len(magic) || string(b[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: not an openhqm record", errDecode)
	}
	d := decoder{b: b[len(magic):]}
	job := &backends.Job{}
	for _, p := range [...]*string{&job.ID, &job.Route, &job.Endpoint, &job.Queue, &job.Method, &job.Path, &job.Query, &job.Principal, &job.Key} {
		*p = d.str()
	}
	if created := d.varint(); created != 0 {
		job.CreatedAt = time.Unix(0, created).UTC()
	}
	nh := d.uvarint()
	if nh > maxHeaders {
		return nil, fmt.Errorf("%w: %d headers", errDecode, nh)
	}
	if nh > 0 && d.err == nil {
		job.Headers = make([]backends.Header, 0, nh)
		for range nh {
			name, value := d.str(), d.str()
			if d.err != nil {
				break
			}
			job.Headers = append(job.Headers, backends.Header{Name: name, Value: value})
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) > 0 {
		job.Body = append([]byte(nil), d.b...)
	}
	return job, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad length", errDecode)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad integer", errDecode)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: truncated", errDecode)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
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
