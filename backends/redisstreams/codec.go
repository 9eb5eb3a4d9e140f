package redisstreams

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/openhqm/openhqm/backends"
)

// Stream entry layout (the wire format of a job, shared by every process that
// reads or writes the stream, so changes must stay backward compatible):
//
//	m  compact JSON of the job without its body (jobMeta)
//	b  the request body, raw bytes (never base64)
//	a  deliveries before this entry (decimal; absent for a new job). A nacked
//	   job is written again as a new entry, so its attempts continue from here.
const (
	fieldMeta     = "m"
	fieldBody     = "b"
	fieldAttempts = "a"
)

// jobMeta is the small part of a job, as JSON with short keys.
type jobMeta struct {
	ID        string      `json:"id"`
	Route     string      `json:"r,omitempty"`
	Endpoint  string      `json:"e,omitempty"`
	Queue     string      `json:"q,omitempty"`
	Method    string      `json:"mt,omitempty"`
	Path      string      `json:"p,omitempty"`
	Query     string      `json:"qs,omitempty"`
	Headers   [][2]string `json:"h,omitempty"`
	Principal string      `json:"pr,omitempty"`
	Key       string      `json:"k,omitempty"`
	Created   int64       `json:"c,omitempty"` // unix nanoseconds
}

var errBadEntry = errors.New("malformed job entry")

// encodeMeta returns the m field of a job.
func encodeMeta(j *backends.Job) ([]byte, error) {
	m := jobMeta{
		ID: j.ID, Route: j.Route, Endpoint: j.Endpoint, Queue: j.Queue, Method: j.Method,
		Path: j.Path, Query: j.Query, Principal: j.Principal, Key: j.Key,
	}
	if !j.CreatedAt.IsZero() {
		m.Created = j.CreatedAt.UnixNano()
	}
	if len(j.Headers) > 0 {
		m.Headers = make([][2]string, len(j.Headers))
		for i, h := range j.Headers {
			m.Headers[i] = [2]string{h.Name, h.Value}
		}
	}
	return json.Marshal(&m)
}

// decodeJob rebuilds a job from its m and b fields. The job owns its memory.
func decodeJob(meta, body string) (*backends.Job, error) {
	var m jobMeta
	if err := json.Unmarshal([]byte(meta), &m); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadEntry, err)
	}
	if m.ID == "" {
		return nil, fmt.Errorf("%w: no id", errBadEntry)
	}
	j := &backends.Job{
		ID: m.ID, Route: m.Route, Endpoint: m.Endpoint, Queue: m.Queue, Method: m.Method,
		Path: m.Path, Query: m.Query, Principal: m.Principal, Key: m.Key,
	}
	if m.Created != 0 {
		j.CreatedAt = time.Unix(0, m.Created)
	}
	if len(m.Headers) > 0 {
		j.Headers = make([]backends.Header, len(m.Headers))
		for i, h := range m.Headers {
			j.Headers[i] = backends.Header{Name: h[0], Value: h[1]}
		}
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
