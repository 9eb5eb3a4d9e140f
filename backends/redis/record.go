package redis

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/openhqm/openhqm/backends"
)

// A record is one string: the format byte recordFormat, then
//
//	Status Route Principal Error: each a uvarint length and its bytes
//	Attempts StatusCode: uvarints
//	SubmittedAt StartedAt UpdatedAt CompletedAt: varints of Unix nanoseconds, 0 for the zero time
//	in format 2 only: the history (backends.Result.History): its length as
//	  a uvarint, then each attempt's Number and StatusCode as uvarints, At as
//	  a varint of Unix nanoseconds, Error as a string, and Uncounted as 0 or 1
//	the header count as a uvarint, then each header's name and value as strings
//	the body: the rest, raw
//
// A record without history is written in format 1, which every release
// reads; only a job that failed an attempt has a format 2 record.
// Header values are kept byte for byte, and the body is never re-encoded.
// Processes of two releases read each other's records during a rolling
// upgrade, so the layout never changes in place: a change is a new format
// byte, and decoders keep reading every format still stored.
//
// Earlier releases kept a record in a hash: a resultWire as JSON in field
// recordMeta and the body in field recordBody. Get still reads those.
const (
	recordFormat        byte = 1
	recordFormatHistory byte = 2
	recordMeta               = "r"
	recordBody               = "b"
)

// maxRecordHeaders bounds the header count a decoder accepts, whatever a
// corrupt record claims (each header takes at least two bytes anyway).
const maxRecordHeaders = 1 << 16

// maxRecordHistory bounds the history a decoder accepts; writers keep
// backends.MaxHistory.
const maxRecordHistory = 1 << 10

// values pools record values: a worker writes one per job, and a value is
// free again once its round trip was sent.
var values = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledValue keeps large answers out of the pool.
const maxPooledValue = 64 << 10

func getValue() []byte { return (*values.Get().(*[]byte))[:0] }

func putValue(v []byte) {
	if cap(v) == 0 || cap(v) > maxPooledValue {
		return
	}
	values.Put(&v)
}

// appendValue appends r's record value to dst. It is the one encoding of a
// record, used by Create, Update and the queue's EnqueueWithResult and
// AckWithResult alike.
func appendValue(dst []byte, r *backends.Result) []byte {
	strs := [...]string{string(r.Status), r.Route, r.Principal, r.Error}
	n := 1 + 2*binary.MaxVarintLen64 + 5*binary.MaxVarintLen64 + len(r.Body)
	for _, s := range strs {
		n += binary.MaxVarintLen64 + len(s)
	}
	for _, h := range r.Headers {
		n += 2*binary.MaxVarintLen64 + len(h.Name) + len(h.Value)
	}
	for _, a := range r.History {
		n += 5*binary.MaxVarintLen64 + len(a.Error)
	}
	dst = slices.Grow(dst, n)
	if len(r.History) == 0 {
		dst = append(dst, recordFormat)
	} else {
		dst = append(dst, recordFormatHistory)
	}
	for _, s := range strs {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	dst = binary.AppendUvarint(dst, uint64(max(r.Attempts, 0)))
	dst = binary.AppendUvarint(dst, uint64(max(r.StatusCode, 0)))
	for _, t := range [...]time.Time{r.SubmittedAt, r.StartedAt, r.UpdatedAt, r.CompletedAt} {
		dst = binary.AppendVarint(dst, unixNano(t))
	}
	if len(r.History) > 0 {
		dst = binary.AppendUvarint(dst, uint64(len(r.History)))
		for _, a := range r.History {
			dst = binary.AppendUvarint(dst, uint64(max(a.Number, 0)))
			dst = binary.AppendUvarint(dst, uint64(max(a.StatusCode, 0)))
			dst = binary.AppendVarint(dst, unixNano(a.At))
			dst = binary.AppendUvarint(dst, uint64(len(a.Error)))
			dst = append(dst, a.Error...)
			if a.Uncounted {
				dst = append(dst, 1)
			} else {
				dst = append(dst, 0)
			}
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Headers)))
	for _, h := range r.Headers {
		dst = binary.AppendUvarint(dst, uint64(len(h.Name)))
		dst = append(dst, h.Name...)
		dst = binary.AppendUvarint(dst, uint64(len(h.Value)))
		dst = append(dst, h.Value...)
	}
	return append(dst, r.Body...)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

var errBadRecord = errors.New("malformed record")

// decodeValue decodes a record value. The Result does not alias v: its
// strings share one allocation, its body is a copy.
func decodeValue(id string, v []byte) (*backends.Result, error) {
	if len(v) == 0 || (v[0] != recordFormat && v[0] != recordFormatHistory) {
		return nil, fmt.Errorf("%w: unknown format", errBadRecord)
	}
	history := v[0] == recordFormatHistory
	// Walk the fields on the bytes first, allocating nothing, then convert
	// what they span to one string that every field slices.
	n, err := parseRecord(v[1:], history, nil)
	if err != nil {
		return nil, err
	}
	r := &backends.Result{ID: id}
	if _, err := parseRecord(string(v[1:1+n]), history, r); err != nil {
		return nil, err
	}
	if rest := v[1+n:]; len(rest) > 0 {
		r.Body = bytes.Clone(rest)
	}
	return r, nil
}

// parseRecord reads the fields of a record (after its format byte) from in
// into r and answers their length; the body is what follows. history says
// whether the format has one. With r nil it only validates.
func parseRecord[T string | []byte](in T, history bool, r *backends.Result) (int, error) {
	d := decoder[T]{in: in}
	st, route, principal, msg := d.str(), d.str(), d.str(), d.str()
	attempts, code := d.uvarint(), d.uvarint()
	var times [4]int64
	for i := range times {
		times[i] = d.varint()
	}
	var hist []backends.Attempt
	if history {
		na := d.uvarint()
		// Each attempt takes at least five bytes.
		if d.err == nil && (na == 0 || na > maxRecordHistory || na > uint64(len(d.in)/5)) {
			return 0, fmt.Errorf("%w: bad history length %d", errBadRecord, na)
		}
		if r != nil && d.err == nil {
			hist = make([]backends.Attempt, na)
		}
		for i := range int(na) {
			num, sc, at, e := d.uvarint(), d.uvarint(), d.varint(), d.str()
			unc := d.byte()
			if d.err == nil && unc > 1 {
				d.err = fmt.Errorf("%w: bad attempt flag", errBadRecord)
			}
			if hist != nil {
				hist[i] = backends.Attempt{Number: int(min(num, 1<<31-1)), StatusCode: int(min(sc, 1<<31-1)),
					At: fromUnixNano(at), Error: string(e), Uncounted: unc == 1}
			}
		}
	}
	nh := d.uvarint()
	// Each header takes at least two bytes, so a count the rest cannot hold
	// is refused before anything is allocated.
	if d.err == nil && (nh > maxRecordHeaders || nh > uint64(len(d.in)/2)) {
		return 0, fmt.Errorf("%w: bad header count %d", errBadRecord, nh)
	}
	var hs []backends.Header
	if r != nil && nh > 0 && d.err == nil {
		hs = make([]backends.Header, nh)
	}
	for i := range int(nh) {
		name, value := d.str(), d.str()
		if hs != nil {
			hs[i] = backends.Header{Name: string(name), Value: string(value)}
		}
	}
	if d.err != nil {
		return 0, d.err
	}
	if r != nil {
		r.Status, r.Route, r.Principal, r.Error = backends.Status(st), string(route), string(principal), string(msg)
		r.Attempts, r.StatusCode = int(min(attempts, 1<<31-1)), int(min(code, 1<<31-1))
		r.SubmittedAt, r.StartedAt = fromUnixNano(times[0]), fromUnixNano(times[1])
		r.UpdatedAt, r.CompletedAt = fromUnixNano(times[2]), fromUnixNano(times[3])
		r.Headers = hs
		r.History = hist
	}
	return len(in) - len(d.in), nil
}

// decoder consumes in; the first error sticks and later reads answer zero values.
type decoder[T string | []byte] struct {
	in  T
	err error
}

// uvarint reads what binary.AppendUvarint writes, from a string as well as
// from bytes.
func (d *decoder[T]) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var v uint64
	for i := 0; i < len(d.in) && i < binary.MaxVarintLen64; i++ {
		b := d.in[i]
		if i == binary.MaxVarintLen64-1 && b > 1 {
			break // overflows 64 bits
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			d.in = d.in[i+1:]
			return v
		}
	}
	d.err = fmt.Errorf("%w: bad number", errBadRecord)
	return 0
}

// byte reads one byte.
func (d *decoder[T]) byte() byte {
	if d.err == nil && len(d.in) == 0 {
		d.err = fmt.Errorf("%w: record ends early", errBadRecord)
	}
	if d.err != nil {
		return 0
	}
	b := d.in[0]
	d.in = d.in[1:]
	return b
}

// varint reads what binary.AppendVarint writes.
func (d *decoder[T]) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder[T]) str() T {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.in)) {
		d.err = fmt.Errorf("%w: string longer than the record", errBadRecord)
	}
	if d.err != nil {
		var zero T
		return zero
	}
	s := d.in[:n]
	d.in = d.in[n:]
	return s
}

// resultWire is a Result without its body, as earlier releases stored it in
// a record hash's field recordMeta.
type resultWire struct {
	Route       string      `json:"route,omitempty"`
	Principal   string      `json:"principal,omitempty"`
	Status      string      `json:"status"`
	Attempts    int         `json:"attempts,omitempty"`
	SubmittedAt time.Time   `json:"submitted_at,omitzero"`
	StartedAt   time.Time   `json:"started_at,omitzero"`
	UpdatedAt   time.Time   `json:"updated_at,omitzero"`
	CompletedAt time.Time   `json:"completed_at,omitzero"`
	Error       string      `json:"error,omitempty"`
	StatusCode  int         `json:"status_code,omitempty"`
	Headers     [][2]string `json:"headers,omitempty"`
}

// decodeHash decodes a record hash's JSON and body; the Result does not
// alias them.
func decodeHash(id string, meta, body []byte) (*backends.Result, error) {
	var w resultWire
	if err := json.Unmarshal(meta, &w); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadRecord, err)
	}
	r := &backends.Result{
		ID: id, Route: w.Route, Principal: w.Principal, Status: backends.Status(w.Status), Attempts: w.Attempts,
		SubmittedAt: w.SubmittedAt, StartedAt: w.StartedAt, UpdatedAt: w.UpdatedAt, CompletedAt: w.CompletedAt,
		Error: w.Error, StatusCode: w.StatusCode,
	}
	for _, h := range w.Headers {
		r.Headers = append(r.Headers, backends.Header{Name: h[0], Value: h[1]})
	}
	if len(body) > 0 {
		r.Body = bytes.Clone(body)
	}
	return r, nil
}
