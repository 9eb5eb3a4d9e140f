package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/itchyny/gojq"
	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/httpheader"
	"github.com/valyala/fasthttp"
)

const (
	// transformTimeout bounds the jq work of one request: gojq has no limit
	// of its own, and an expression such as [range(1e9)] must not hold a
	// handler (or a CPU) for long. It covers every expression of the route.
	transformTimeout = 100 * time.Millisecond
	// maxTransformValue bounds one header or query value produced by a
	// transform; apps and proxies commonly refuse header sections above 8 KiB.
	maxTransformValue = 8 << 10
)

// transformError is a failed transform. msg is safe to show the client: it
// names the part of the transform that failed but never an expression, a
// value or a gojq message; err is the detail for the log.
type transformError struct {
	msg      string
	err      error
	internal bool // a fault of openhqm, not of the request
}

func (e *transformError) Error() string {
	if e.err == nil {
		return e.msg
	}
	return e.msg + ": " + e.err.Error()
}

func (e *transformError) Unwrap() error { return e.err }

var (
	errNotJSON      = errors.New("the request body is not a single JSON value")
	errNoValue      = errors.New("the expression produced no value")
	errControlChar  = errors.New("the value contains a control character")
	errValueTooLong = errors.New("the value is too long")
	errBodyTooLarge = errors.New("the body is larger than max_body_size")
)

// nameValue is one header or query parameter a transform sets.
type nameValue struct{ name, value string }

// transformed is the outcome of a route's transform, computed completely
// before the request is touched, so that a failure leaves it unchanged.
type transformed struct {
	body    []byte // nil: the body is left as it is
	headers []nameValue
	query   []nameValue
}

// applyTransform rewrites req from its JSON body as tr says, before the
// request is forwarded or becomes a job. Every expression reads the body as
// the client sent it (decoded once, numbers kept exactly as written) and
// only its first result counts:
//
//   - Body: the result, re-encoded as compact JSON, replaces the body,
//     Content-Type becomes application/json and Content-Encoding is
//     dropped. Any JSON value is accepted, not only objects.
//   - Headers: a string is used as is, a number or boolean as its JSON text,
//     an object or array as compact JSON. null or no result sets nothing
//     (a header the client sent under that name is left as it was). A value
//     with a control character (CR, LF, NUL…) fails the request. Header
//     transforms come after the body's, so an explicit Content-Type wins.
//     Host, Content-Length and hop-by-hop names are never set: the proxy
//     owns them.
//   - Query: the same conversion; the parameter is URL-escaped and appended
//     to the query string, replacing every parameter of the same name;
//     null or no result sets nothing.
//
// The work is bounded by transformTimeout (on top of c's own deadline) and
// the new body by maxBody (0: unbounded). A failure returns a
// *transformError and leaves req unchanged. applyTransform does not retain
// req or its memory; it is safe for concurrent use on distinct requests.
func applyTransform(c context.Context, tr *config.Transform, req *fasthttp.Request, maxBody int64) (err error) {
	defer func() {
		if p := recover(); p != nil { // a gojq bug must not take the server down
			err = &transformError{msg: "the transform failed", err: fmt.Errorf("panic: %v", p), internal: true}
		}
	}()
	t, err := evalTransform(c, tr, req.Body(), maxBody)
	if err != nil {
		return err
	}
	t.apply(req)
	return nil
}

// evalTransform runs the expressions of tr on body. body is only read.
func evalTransform(c context.Context, tr *config.Transform, body []byte, maxBody int64) (*transformed, error) {
	in, err := decodeJSON(body)
	if err != nil {
		return nil, &transformError{msg: "the transform needs a JSON request body", err: err}
	}
	c, cancel := context.WithTimeout(c, transformTimeout)
	defer cancel()

	t := &transformed{}
	if tr.Body != nil {
		v, ok, err := first(c, tr.Body, in)
		if err == nil && !ok {
			err = errNoValue
		}
		if err != nil {
			return nil, evalError("body", err)
		}
		out, err := gojq.Marshal(v)
		if err == nil && maxBody > 0 && int64(len(out)) > maxBody {
			err = errBodyTooLarge
		}
		if err != nil {
			return nil, evalError("body", err)
		}
		t.body = out
	}
	for _, name := range sortedNames(tr.Headers) {
		if reservedHeader(name) {
			continue
		}
		s, ok, err := textValue(c, tr.Headers[name], in)
		if err == nil && ok {
			err = checkHeaderValue(s)
		}
		if err != nil {
			return nil, evalError("header "+name, err)
		}
		if ok {
			t.headers = append(t.headers, nameValue{name, s})
		}
	}
	for _, name := range sortedNames(tr.Query) {
		s, ok, err := textValue(c, tr.Query[name], in)
		if err == nil && ok && len(s) > maxTransformValue {
			err = errValueTooLong
		}
		if err != nil {
			return nil, evalError("query parameter "+name, err)
		}
		if ok {
			t.query = append(t.query, nameValue{name, s})
		}
	}
	return t, nil
}

// apply writes t into req.
func (t *transformed) apply(req *fasthttp.Request) {
	if t.body != nil {
		req.SetBody(t.body) // Content-Length follows the body when it is written
		req.Header.SetContentType("application/json")
		req.Header.Del("Content-Encoding") // the new body is plain JSON whatever the client claimed
	}
	for _, h := range t.headers {
		req.Header.Del(h.name) // Set would leave a repeated field's other copies
		req.Header.Set(h.name, h.value)
	}
	if len(t.query) > 0 {
		u := req.URI()
		u.SetQueryString(setQuery(string(u.QueryString()), t.query))
	}
}

func evalError(part string, err error) error {
	msg := "the transform of the " + part + " failed on this request body"
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		msg = "the transform of the " + part + " took longer than " + transformTimeout.String()
	case errors.Is(err, errNoValue), errors.Is(err, errControlChar), errors.Is(err, errValueTooLong),
		errors.Is(err, errBodyTooLarge):
		msg = "the transform of the " + part + " failed: " + err.Error()
	}
	return &transformError{msg: msg, err: err}
}

// decodeJSON decodes exactly one JSON value. Numbers stay json.Number, so an
// id beyond 2^53 or a price written 25.50 reaches the app as written when a
// transform passes it through.
func decodeJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %w", errNotJSON, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the value", errNotJSON)
	}
	return v, nil
}

// first returns the first result of q on in; ok is false when there is
// none. An error result (a jq runtime error, halt, the deadline) is err.
func first(c context.Context, q *config.JQ, in any) (v any, ok bool, err error) {
	iter := q.Code.RunWithContext(c, in)
	v, ok = iter.Next()
	if !ok {
		return nil, false, nil
	}
	if e, isErr := v.(error); isErr {
		return nil, false, e
	}
	return v, true, nil
}

// textValue converts the first result of q on in to the text of a header or
// query value; ok is false for null or no result.
func textValue(c context.Context, q *config.JQ, in any) (string, bool, error) {
	v, ok, err := first(c, q, in)
	if err != nil || !ok || v == nil {
		return "", false, err
	}
	if s, isString := v.(string); isString {
		return s, true, nil
	}
	b, err := gojq.Marshal(v)
	if err != nil {
		return "", false, err
	}
	return string(b), true, nil
}

// checkHeaderValue refuses what would split or corrupt a header: control
// characters other than tab (RFC 9110 §5.5), and values above
// maxTransformValue.
func checkHeaderValue(s string) error {
	if len(s) > maxTransformValue {
		return errValueTooLong
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return errControlChar
		}
	}
	return nil
}

// reservedHeader reports whether a transform may not set name: the framing
// and connection headers belong to the proxy, and setting them from a
// client's body could desynchronise the app's parser.
func reservedHeader(name string) bool {
	return httpheader.IsHopByHop(name) || httpheader.Framing(name)
}

// setQuery returns query with every parameter named in set removed (names
// compared after unescaping) and set appended, URL-escaped. Parameters that
// are kept keep their original encoding and order.
func setQuery(query string, set []nameValue) string {
	var b strings.Builder
	for part := range strings.SplitSeq(query, "&") {
		if part == "" {
			continue
		}
		key, _, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); err == nil {
			key = k
		}
		if slices.ContainsFunc(set, func(nv nameValue) bool { return nv.name == key }) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(part)
	}
	for _, nv := range set {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(nv.name))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(nv.value))
	}
	return b.String()
}

// sortedNames returns the keys of m in order, so that a transform sets its
// query parameters in the same order every time (the query is part of an
// Idempotency-Key's request digest).
func sortedNames(m map[string]*config.JQ) []string {
	names := make([]string, 0, len(m))
	for k, q := range m {
		if q != nil {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}

// transform applies route r's transform to the request in ctx. On failure it
// answers (422 for the client's body, 500 for an internal fault) and returns
// false.
func (s *Server) transform(ctx *fasthttp.RequestCtx, g *Generation, r *Route, ex *exchange) bool {
	err := applyTransform(context.Background(), r.Config.Transform, &ctx.Request, g.maxBody)
	if err == nil {
		return true
	}
	var te *transformError
	msg, code := "the transform failed", fasthttp.StatusInternalServerError
	if errors.As(err, &te) && !te.internal {
		msg, code = te.msg, fasthttp.StatusUnprocessableEntity
	}
	writeError(ctx, code, "route "+strconv.Quote(r.Name)+": "+msg, ex.id)
	if code == fasthttp.StatusInternalServerError {
		s.log.Error("transform failed", "request_id", string(ex.id), "route", r.Name, "err", err)
	} else {
		s.log.Debug("transform refused the request", "request_id", string(ex.id), "route", r.Name, "err", err)
	}
	return false
}
