package redis

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/openhqm/openhqm/backends"
)

// Stream entry layout (the wire format of a job, shared by every process that
// reads or writes the stream, so changes must stay backward compatible):
//
//	m  the job without its body, in the binary layout below
//	b  the request body, raw bytes (never base64)
//	a  deliveries before this entry (decimal; absent for a new job). A nacked
//	   job is written again as a new entry, so its attempts continue from here.
//
// Layout of m, version 1: the byte 0x01; then ID, Route, Endpoint, Queue,
// Method, Path, Query, Principal and Key, each as a uvarint length and its
// bytes; CreatedAt as a varint of unix nanoseconds (0: zero time); the number
// of headers as a uvarint, then each header's name and value as strings.
// Strings are kept byte for byte (header values may hold obs-text that is not
// UTF-8, which JSON would have replaced).
const (
	fieldMeta     = "m"
	fieldBody     = "b"
	fieldAttempts = "a"

	metaVersion = 1
)

var errBadEntry = errors.New("malformed job entry")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encodeMeta returns the m field of a job.
func encodeMeta(j *backends.Job) []byte {
	n := 16 + len(j.ID) + len(j.Route) + len(j.Endpoint) + len(j.Queue) + len(j.Method) +
		len(j.Path) + len(j.Query) + len(j.Principal) + len(j.Key)
	for _, h := range j.Headers {
		n += 4 + len(h.Name) + len(h.Value)
	}
	b := make([]byte, 0, n)
	b = append(b, metaVersion)
	for _, s := range [...]string{j.ID, j.Route, j.Endpoint, j.Queue, j.Method, j.Path, j.Query, j.Principal, j.Key} {
		b = appendString(b, s)
	}
	var created int64
	if !j.CreatedAt.IsZero() {
		created = j.CreatedAt.UnixNano()
	}
	b = binary.AppendVarint(b, created)
	b = binary.AppendUvarint(b, uint64(len(j.Headers)))
	for _, h := range j.Headers {
		b = appendString(b, h.Name)
		b = appendString(b, h.Value)
	}
	return b
}

// metaReader reads the layout of m; the first error sticks.
type metaReader struct {
	s   string
	err error
}

func (r *metaReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: bad %s", errBadEntry, what)
	}
}

func (r *metaReader) uvarint(what string) uint64 {
	v, n := binary.Uvarint([]byte(r.s[:min(len(r.s), binary.MaxVarintLen64)]))
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.s = r.s[n:]
	return v
}

func (r *metaReader) str(what string) string {
	n := r.uvarint(what)
	if r.err != nil || n > uint64(len(r.s)) {
		r.fail(what)
		return ""
	}
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

// decodeJob rebuilds a job from its m and b fields. The job owns its memory
// (strings from go-redis replies are not shared with any buffer).
func decodeJob(meta, body string) (*backends.Job, error) {
	if len(meta) == 0 || meta[0] != metaVersion {
		return nil, fmt.Errorf("%w: unknown version", errBadEntry)
	}
	r := &metaReader{s: meta[1:]}
	j := &backends.Job{
		ID: r.str("id"), Route: r.str("route"), Endpoint: r.str("endpoint"), Queue: r.str("queue"),
		Method: r.str("method"), Path: r.str("path"), Query: r.str("query"),
		Principal: r.str("principal"), Key: r.str("key"),
	}
	if r.err == nil {
		created, n := binary.Varint([]byte(r.s[:min(len(r.s), binary.MaxVarintLen64)]))
		if n <= 0 {
			r.fail("created")
		} else {
			r.s = r.s[n:]
			if created != 0 {
				j.CreatedAt = time.Unix(0, created)
			}
		}
	}
	nh := r.uvarint("header count")
	if r.err == nil && nh > uint64(len(r.s)/2) { // each header takes at least two bytes
		r.fail("header count")
	}
	if r.err == nil && nh > 0 {
		j.Headers = make([]backends.Header, nh)
		for i := range j.Headers {
			j.Headers[i] = backends.Header{Name: r.str("header name"), Value: r.str("header value")}
		}
	}
	if r.err == nil && len(r.s) != 0 {
		r.fail("trailing bytes")
	}
	if r.err == nil && j.ID == "" {
		r.fail("id")
	}
	if r.err != nil {
		return nil, r.err
	}
	if body != "" {
		j.Body = []byte(body)
	}
	return j, nil
}

// decodeEntry decodes a stream entry's fields into a job and the attempts
// made before this entry.
func decodeEntry(values map[string]any) (*backends.Job, int, error) {
	meta, _ := values[fieldMeta].(string)
	body, _ := values[fieldBody].(string)
	j, err := decodeJob(meta, body)
	if err != nil {
		return nil, 0, err
	}
	before := 0
	if a, ok := values[fieldAttempts].(string); ok && a != "" {
		if before, err = strconv.Atoi(a); err != nil || before < 0 {
			return nil, 0, fmt.Errorf("%w: attempts %q", errBadEntry, a)
		}
	}
	return j, before, nil
}
