// Package wire is the binary layout of a job, shared by the queue backends
// that store jobs as bytes (Redis stream entries, Kafka records, SQS message
// bodies), so that one encoding is written, versioned and tested once.
//
// Layout, version 1:
//
//	the version byte, 0x01
//	ID Route Endpoint Queue Method Path Query Principal Key: each as a uvarint length and its bytes
//	CreatedAt: a varint of Unix nanoseconds, 0 for the zero time
//	the header count as a uvarint, then each header's name and value as strings
//	the body: the rest, raw
//
// Strings are kept byte for byte (header values may hold obs-text that is not
// UTF-8, which JSON would have replaced) and the body is never re-encoded.
// Processes of two releases read each other's jobs during a rolling upgrade,
// so the layout never changes in place: a change is a new version byte, and
// decoders keep reading every version still in queues.
package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"time"

	"github.com/openhqm/openhqm/backends"
)

// Version is the layout version AppendJob and AppendFields write, their first byte.
const Version byte = 1

// MaxHeaders bounds the header count a decoder accepts. Every other length is
// bounded by the input itself, so a decoder allocates at most about the size
// of its input plus MaxHeaders headers, whatever a corrupt or hostile input
// claims. No HTTP request the router accepts comes close (its header buffer
// is 8 KiB).
const MaxHeaders = 1 << 16

// ErrMalformed means the input is not a job in a layout this package reads.
var ErrMalformed = errors.New("malformed job encoding")

// Size is the number of bytes AppendJob appends for j.
func Size(j *backends.Job) int {
	return fieldsSize(j) + len(j.Body)
}

func fieldsSize(j *backends.Job) int {
	n := 1 + varintLen(createdAt(j)) + uvarintLen(uint64(len(j.Headers)))
	for _, s := range [...]string{j.ID, j.Route, j.Endpoint, j.Queue, j.Method, j.Path, j.Query, j.Principal, j.Key} {
		n += uvarintLen(uint64(len(s))) + len(s)
	}
	for _, h := range j.Headers {
		n += uvarintLen(uint64(len(h.Name))) + len(h.Name) + uvarintLen(uint64(len(h.Value))) + len(h.Value)
	}
	return n
}

// AppendJob appends the encoding of j, body included, to dst and returns the
// extended slice; it grows dst at most once. The result does not alias j.
func AppendJob(dst []byte, j *backends.Job) []byte {
	dst = slices.Grow(dst, fieldsSize(j)+len(j.Body))
	return append(appendFields(dst, j), j.Body...)
}

// AppendFields appends the encoding of j without its body: what precedes the
// body in AppendJob's encoding, for stores that keep the body in a field of
// its own (DecodeFields reads the two back).
func AppendFields(dst []byte, j *backends.Job) []byte {
	return appendFields(slices.Grow(dst, fieldsSize(j)), j)
}

func appendFields(dst []byte, j *backends.Job) []byte {
	dst = append(dst, Version)
	for _, s := range [...]string{j.ID, j.Route, j.Endpoint, j.Queue, j.Method, j.Path, j.Query, j.Principal, j.Key} {
		dst = appendString(dst, s)
	}
	dst = binary.AppendVarint(dst, createdAt(j))
	dst = binary.AppendUvarint(dst, uint64(len(j.Headers)))
	for _, h := range j.Headers {
		dst = appendString(dst, h.Name)
		dst = appendString(dst, h.Value)
	}
	return dst
}

// DecodeJob decodes an encoding written by AppendJob. The job owns its
// memory: it does not alias b. Errors wrap ErrMalformed.
func DecodeJob(b []byte) (*backends.Job, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	return DecodeVersion(b[0], b[1:])
}

// DecodeVersion decodes b, an encoding of layout version v without its
// version byte, for framings that spell the version their own way. The job
// does not alias b. Errors wrap ErrMalformed.
func DecodeVersion(v byte, b []byte) (*backends.Job, error) {
	if v != Version {
		return nil, fmt.Errorf("%w: unknown version %d", ErrMalformed, v)
	}
	// Walk the fields first, allocating nothing, then convert them to one
	// string that every field of the job slices: one allocation for all of
	// them, and none for an input that turns out to be malformed.
	n, err := parse(b, nil)
	if err != nil {
		return nil, err
	}
	j := new(backends.Job)
	if _, err := parse(string(b[:n]), j); err != nil {
		return nil, err
	}
	if n < len(b) {
		j.Body = bytes.Clone(b[n:])
	}
	return j, nil
}

// DecodeFields decodes fields, written by AppendFields, and the body stored
// apart from them. The job's strings share fields' memory (strings are
// immutable); its body is a copy. Errors wrap ErrMalformed.
func DecodeFields(fields, body string) (*backends.Job, error) {
	if len(fields) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if fields[0] != Version {
		return nil, fmt.Errorf("%w: unknown version %d", ErrMalformed, fields[0])
	}
	j := new(backends.Job)
	n, err := parse(fields[1:], j)
	if err != nil {
		return nil, err
	}
	if n != len(fields)-1 {
		return nil, fmt.Errorf("%w: bad trailing bytes", ErrMalformed)
	}
	if body != "" {
		j.Body = []byte(body)
	}
	return j, nil
}

// parse reads the fields of version 1 (after the version byte) from in into
// j and answers their length; the body is what follows. With j nil it only
// validates, which for a []byte input allocates nothing.
func parse[T string | []byte](in T, j *backends.Job) (int, error) {
	r := reader[T]{in: in}
	var strs [9]T
	for i := range strs {
		strs[i] = r.str()
	}
	if r.err == nil && len(strs[0]) == 0 {
		return 0, fmt.Errorf("%w: no id", ErrMalformed) // every job has one; its result record is keyed by it
	}
	created := unzigzag(r.uvarint())
	nh := r.uvarint()
	// Each header takes at least two bytes (two empty strings), so a count
	// the rest of the input cannot hold is refused before anything is allocated.
	if r.err == nil && (nh > MaxHeaders || nh > uint64(len(r.in)/2)) {
		return 0, fmt.Errorf("%w: bad header count %d", ErrMalformed, nh)
	}
	var hs []backends.Header
	if j != nil && nh > 0 && r.err == nil {
		hs = make([]backends.Header, nh)
	}
	for i := range int(nh) {
		name, value := r.str(), r.str()
		if hs != nil {
			hs[i] = backends.Header{Name: string(name), Value: string(value)}
		}
	}
	if r.err != nil {
		return 0, r.err
	}
	if j != nil {
		j.ID, j.Route, j.Endpoint, j.Queue = string(strs[0]), string(strs[1]), string(strs[2]), string(strs[3])
		j.Method, j.Path, j.Query = string(strs[4]), string(strs[5]), string(strs[6])
		j.Principal, j.Key = string(strs[7]), string(strs[8])
		if created != 0 {
			j.CreatedAt = time.Unix(0, created).UTC()
		}
		j.Headers = hs
	}
	return len(in) - len(r.in), nil
}

// reader consumes in; the first error sticks and later reads answer zero values.
type reader[T string | []byte] struct {
	in  T
	err error
}

// uvarint reads what binary.AppendUvarint writes, as binary.Uvarint does,
// from a string as well as from bytes.
func (r *reader[T]) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	var v uint64
	for i := 0; i < len(r.in) && i < binary.MaxVarintLen64; i++ {
		c := r.in[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break // more than 64 bits
			}
			r.in = r.in[i+1:]
			return v | uint64(c)<<(7*i)
		}
		v |= uint64(c&0x7f) << (7 * i)
	}
	r.err = fmt.Errorf("%w: bad length", ErrMalformed)
	return 0
}

func (r *reader[T]) str() T {
	n := r.uvarint()
	var s T
	if r.err != nil {
		return s
	}
	if n > uint64(len(r.in)) {
		r.err = fmt.Errorf("%w: truncated", ErrMalformed)
		return s
	}
	s, r.in = r.in[:n], r.in[n:]
	return s
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

func varintLen(v int64) int { return uvarintLen(zigzag(v)) }

// zigzag and unzigzag map signed integers onto unsigned ones as
// binary.AppendVarint and binary.Varint do.
func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// createdAt is j.CreatedAt as written: 0 stands for the zero time.
func createdAt(j *backends.Job) int64 {
	if j.CreatedAt.IsZero() {
		return 0
	}
	return j.CreatedAt.UnixNano()
}
