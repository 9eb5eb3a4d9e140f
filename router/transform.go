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

	"github.com/itchyny/gojq"
	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/internal/httpheader"
	"github.com/valyala/fasthttp"
)

// maxTransformValue bounds one header or query value produced by a
// transform; apps and proxies commonly refuse header sections above 8 KiB.
const maxTransformValue = 8 << 10

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
	errTooDeep      = errors.New("the value is nested too deeply")
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
// The expressions together are bounded by jqTimeout (on top of c's own
// deadline) and jqEvalMemory, and the new body by maxBody and jqEvalMemory.
// A failure returns a *transformError and leaves req unchanged.
// applyTransform does not retain req or its memory; it is safe for
// concurrent use on distinct requests.
func applyTransform(c context.Context, tr *config.Transform, req *fasthttp.Request, maxBody int64) (err error) {
	defer func() {
		if p := recover(); p != nil { // a bug must not take the server down
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
	if err := config.CheckJQNumbers(in); err != nil {
		return nil, &transformError{msg: fmt.Sprintf("the transform cannot use a request body with a number of more than %d characters", config.MaxJQNumberLen), err: err}
	}
	c, cancel := context.WithTimeout(c, jqTimeout)
	defer cancel()
	m := newJQMeter()
	defer m.release()

	t := &transformed{}
	if tr.Body != nil {
		v, ok, err := jqFirst(c, tr.Body, in, m)
		if err == nil && !ok {
			err = errNoValue
		}
		if err != nil {
			return nil, evalError("body", err)
		}
		if maxBody <= 0 || maxBody > jqEvalMemory {
			maxBody = jqEvalMemory // also bounds the measuring of a value that shares its parts
		}
		// Measured before it is written: a value that shares its parts
		// (reduce range(40) as $i (0; [., .])) is small in memory and
		// terabytes as text.
		if _, err := config.JQTextSize(v, maxBody); err != nil {
			return nil, evalError("body", outputError(err, errBodyTooLarge))
		}
		out, err := gojq.Marshal(v)
		if err != nil {
			return nil, evalError("body", err)
		}
		t.body = out
	}
	for _, name := range sortedNames(tr.Headers) {
		if reservedHeader(name) {
			continue
		}
		s, ok, err := textValue(c, tr.Headers[name], in, m)
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
		s, ok, err := textValue(c, tr.Query[name], in, m)
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
		msg = "the transform of the " + part + " took longer than " + jqTimeout.String()
	case errors.Is(err, errNoValue), errors.Is(err, errControlChar), errors.Is(err, errValueTooLong),
		errors.Is(err, errBodyTooLarge), errors.Is(err, errTooDeep):
		msg = "the transform of the " + part + " failed: " + firstError(err).Error()
	case errors.Is(err, config.ErrJQMemory):
		msg = "the transform of the " + part + " needs more memory than a transform may use"
	case errors.Is(err, config.ErrJQWork):
		msg = "the transform of the " + part + " would do too much work in one step"
	case errors.Is(err, errJQPanic):
		return &transformError{msg: "the transform failed", err: err, internal: true}
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

// firstError returns the first error err wraps with %w: %w, the one the
// client may see (the second is the detail for the log).
func firstError(err error) error {
	if m, ok := err.(interface{ Unwrap() []error }); ok {
		return m.Unwrap()[0]
	}
	return err
}

// outputError maps JQTextSize's error for a result to what the client is
// told: tooLarge, or errTooDeep.
func outputError(err, tooLarge error) error {
	if errors.Is(err, config.ErrJQWork) {
		return fmt.Errorf("%w: %w", errTooDeep, err)
	}
	return fmt.Errorf("%w: %w", tooLarge, err)
}

// textValue converts the first result of q on in to the text of a header or
// query value; ok is false for null or no result.
func textValue(c context.Context, q *config.JQ, in any, m *jqMeter) (string, bool, error) {
	v, ok, err := jqFirst(c, q, in, m)
	if err != nil || !ok || v == nil {
		return "", false, err
	}
	if s, isString := v.(string); isString {
		return s, true, nil
	}
	if _, err := config.JQTextSize(v, maxTransformValue); err != nil {
		return "", false, outputError(err, errValueTooLong)
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
	if reason := jqReason(err); reason != "error" {
		r.jqReport.failed(s.log, r, "transform", err) // the configuration's limits, which an operator should see
	}
	if code == fasthttp.StatusInternalServerError {
		s.log.Error("transform failed", "request_id", string(ex.id), "route", r.Name, "err", err)
	} else {
		s.log.Debug("transform refused the request", "request_id", string(ex.id), "route", r.Name, "err", err)
	}
	return false
}
