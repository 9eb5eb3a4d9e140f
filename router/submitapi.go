package router

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"strings"
	"time"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/internal/httpheader"
	"github.com/valyala/fasthttp"
)

// The original OpenHQM's API, kept with its JSON shapes where clients
// depend on them, without its bugs: a FAILED status answers 200, a JSON array or scalar result is
// returned as is, the PENDING record is removed when the enqueue fails,
// Retry-After is set while a result is not ready, and submit_api.client_auth
// scopes who reads a job. Not kept: CORS (the original allowed every origin;
// openhqm sends no CORS headers, so browsers on other origins are refused),
// metadata.timeout, priority and retry_count (validated as the original
// does, then ignored: the route's or endpoint's timeout and submit_api.retry
// apply).

const submitPrefix = "/api/v1/"

// submitAPI is the submit_api block in one generation.
type submitAPI struct {
	route   *asyncRoute // queue, default endpoint, principals, counters
	auth    *clientAuth // nil: anyone may submit
	metrics *routeMetrics
}

// submitRequest is the body of POST /api/v1/submit.
type submitRequest struct {
	Payload  json.RawMessage `json:"payload"`
	Headers  json.RawMessage `json:"headers"`
	Metadata json.RawMessage `json:"metadata"`
}

type submitMetadata struct {
	Endpoint   *string      `json:"endpoint"`
	Method     *string      `json:"method"`
	Timeout    *json.Number `json:"timeout"`
	Priority   *json.Number `json:"priority"`
	RetryCount *json.Number `json:"retry_count"`
}

// fieldError is one entry of a FastAPI-style 422 detail list.
type fieldError struct {
	Loc  []string `json:"loc"`
	Msg  string   `json:"msg"`
	Type string   `json:"type"`
}

func detail(ctx *fasthttp.RequestCtx, code int, d any) {
	ctx.Response.Reset()
	writeJSON(ctx, code, map[string]any{"detail": d})
}

func (s *Server) serveSubmitAPI(ctx *fasthttp.RequestCtx, g *Generation, rest []byte) {
	sa := g.async.submit
	op, id, _ := bytes.Cut(rest, []byte("/"))
	switch string(op) {
	case "submit":
		if len(id) > 0 {
			detail(ctx, fasthttp.StatusNotFound, "Not Found")
			return
		}
		if !ctx.IsPost() {
			detail(ctx, fasthttp.StatusMethodNotAllowed, "Method Not Allowed")
			ctx.Response.Header.Set("Allow", "POST")
			return
		}
	case "status", "response":
		if !ctx.IsGet() && !ctx.IsHead() {
			detail(ctx, fasthttp.StatusMethodNotAllowed, "Method Not Allowed")
			ctx.Response.Header.Set("Allow", "GET, HEAD")
			return
		}
	default:
		detail(ctx, fasthttp.StatusNotFound, "Not Found")
		return
	}
	if op := string(op); op != "submit" {
		if !validJobID(id) {
			detail(ctx, fasthttp.StatusNotFound, "Request not found or expired")
			return
		}
		res, ok := s.readJob(ctx, g, string(id), func(code int, msg string) {
			if code == fasthttp.StatusNotFound {
				msg = "Request not found or expired"
			}
			detail(ctx, code, msg)
		})
		if !ok {
			return
		}
		if op == "status" {
			writeJSON(ctx, fasthttp.StatusOK, legacyStatus(res))
		} else {
			legacyResponse(ctx, res)
		}
		return
	}

	ex := acquireExchange()
	defer releaseExchange(ex)
	if v := ctx.Request.Header.Peek(headerRequestID); validRequestID(v) {
		ex.id = append(ex.id, v...)
	} else {
		ex.id = appendNewRequestID(ex.id)
	}
	if sa.auth != nil {
		if ex.principal = sa.auth.principal(&ctx.Request.Header); ex.principal < 0 {
			detail(ctx, fasthttp.StatusUnauthorized, "missing or invalid credentials")
			ctx.Response.Header.Set("WWW-Authenticate", sa.auth.challenge)
			return
		}
	}
	if g.maxBody > 0 && int64(len(ctx.Request.Body())) > g.maxBody {
		detail(ctx, fasthttp.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	job, code, d := newSubmitJob(ctx, g, sa.route)
	if job == nil {
		detail(ctx, code, d)
		return
	}
	if sa.auth != nil {
		job.Principal = sa.route.principals[ex.principal]
	}
	jobID, rej := s.submit(ctx, g, sa.route, job, ex)
	switch {
	case rej == nil:
	case rej.id != "":
		// The original's shape, with the id whose outcome is unknown.
		writeJSON(ctx, rej.code, map[string]string{"detail": rej.msg, "id": rej.id, "correlation_id": rej.id})
		ctx.Response.Header.Set("Retry-After", rej.retryAfter)
		return
	case rej.code == fasthttp.StatusServiceUnavailable:
		detail(ctx, rej.code, "Unable to queue request. Service temporarily unavailable.")
		ctx.Response.Header.Set("Retry-After", rej.retryAfter)
		return
	default:
		detail(ctx, rej.code, rej.msg)
		return
	}
	submitted := job.CreatedAt
	if jobID != job.ID {
		// An Idempotency-Key named an earlier job: answer with that one.
		c, cancel := context.WithTimeout(context.Background(), g.async.timeout)
		if res, err := g.async.results.Get(c, jobID); err == nil {
			submitted = res.SubmittedAt
		}
		cancel()
	}
	writeJSON(ctx, fasthttp.StatusAccepted, map[string]string{
		"correlation_id": jobID, "status": "PENDING", "submitted_at": rfc3339(submitted),
	})
	ctx.Response.Header.Set("Location", submitPrefix+"status/"+jobID)
	ctx.Response.Header.SetBytesV(headerRequestID, ex.id)
}

// newSubmitJob validates a submit and builds its job, or answers the status
// code and detail of the refusal.
func newSubmitJob(ctx *fasthttp.RequestCtx, g *Generation, ar *asyncRoute) (*backends.Job, int, any) {
	ct := string(ctx.Request.Header.ContentType())
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, fasthttp.StatusUnsupportedMediaType, "Content-Type must be application/json"
	}
	invalid := func(msg, typ string, loc ...string) (*backends.Job, int, any) {
		return nil, fasthttp.StatusUnprocessableEntity, []fieldError{{Loc: append([]string{"body"}, loc...), Msg: msg, Type: typ}}
	}
	var req submitRequest
	body := ctx.Request.Body()
	if err := json.Unmarshal(body, &req); err != nil {
		if bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) || !json.Valid(body) {
			return invalid("invalid JSON: "+err.Error(), "value_error.jsondecode")
		}
		return invalid("the body must be a JSON object", "type_error.dict")
	}
	if isNull(req.Payload) {
		return invalid("field required", "value_error.missing", "payload")
	}
	if bytes.TrimSpace(req.Payload)[0] != '{' {
		return invalid("value is not a valid dict", "type_error.dict", "payload")
	}
	headers := []backends.Header{}
	if !isNull(req.Headers) {
		var hs map[string]string
		if err := json.Unmarshal(req.Headers, &hs); err != nil {
			return invalid("value is not a valid dict of strings", "type_error.dict", "headers")
		}
		for name, value := range hs {
			if !httpheader.IsToken(name) || !httpheader.ValidValue(value) {
				return invalid(fmt.Sprintf("invalid header %q", name), "value_error", "headers", name)
			}
			switch canon := httpheader.Canonical(name); {
			case httpheader.IsHopByHop(canon), httpheader.Framing(canon), canon == "Content-Type":
			default:
				headers = append(headers, backends.Header{Name: canon, Value: value})
			}
		}
	}
	endpoint, method := ar.endpoint, "POST"
	if !isNull(req.Metadata) {
		var md submitMetadata
		dec := json.NewDecoder(bytes.NewReader(req.Metadata))
		dec.UseNumber()
		if err := dec.Decode(&md); err != nil {
			return invalid("value is not a valid metadata object: "+err.Error(), "type_error", "metadata")
		}
		for _, f := range []struct {
			name string
			v    *json.Number
			min  int64
			max  int64
		}{{"timeout", md.Timeout, 1, 1 << 31}, {"priority", md.Priority, 0, 9}, {"retry_count", md.RetryCount, 0, 1 << 31}} {
			if f.v == nil {
				continue
			}
			n, err := f.v.Int64()
			if err != nil || n < f.min || n > f.max {
				return invalid(fmt.Sprintf("must be an integer from %d to %d", f.min, f.max), "value_error.number", "metadata", f.name)
			}
		}
		if md.Endpoint != nil && *md.Endpoint != "" {
			if g.Config.Endpoints[*md.Endpoint] == nil {
				return invalid(fmt.Sprintf("Endpoint '%s' not found in configuration", *md.Endpoint), "value_error", "metadata", "endpoint")
			}
			endpoint = *md.Endpoint
		}
		if md.Method != nil && *md.Method != "" {
			method = strings.ToUpper(*md.Method)
			if !httpheader.IsToken(method) {
				return invalid("not an HTTP method", "value_error", "metadata", "method")
			}
		}
	}
	headers = append(headers,
		backends.Header{Name: "Content-Type", Value: "application/json"},
	)
	return &backends.Job{
		ID:        newJobID(),
		Route:     "", // the submit API's jobs use submit_api.retry
		Endpoint:  endpoint,
		Queue:     ar.queueName,
		Method:    method,
		Path:      "", // the endpoint's URL itself, as the original sent it
		Headers:   headers,
		Body:      append([]byte(nil), bytes.TrimSpace(req.Payload)...),
		Key:       endpoint,
		CreatedAt: time.Now().UTC(),
	}, 0, nil
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

var legacyStatusNames = map[backends.Status]string{
	backends.StatusPending: "PENDING", backends.StatusProcessing: "PROCESSING",
	backends.StatusCompleted: "COMPLETED", backends.StatusFailed: "FAILED",
}

func legacyStatusName(s backends.Status) string {
	if n, ok := legacyStatusNames[s]; ok {
		return n
	}
	return strings.ToUpper(string(s))
}

// legacyStatus is GET /api/v1/status/{id}; updated_at falls back to
// submitted_at as in the original.
func legacyStatus(r *backends.Result) map[string]any {
	updated := r.UpdatedAt
	if updated.IsZero() {
		updated = r.SubmittedAt
	}
	return map[string]any{
		"correlation_id": r.ID,
		"status":         legacyStatusName(r.Status),
		"submitted_at":   rfc3339(r.SubmittedAt),
		"updated_at":     rfc3339(updated),
	}
}

// legacyResponse is GET /api/v1/response/{id}.
func legacyResponse(ctx *fasthttp.RequestCtx, r *backends.Result) {
	status := legacyStatusName(r.Status)
	switch r.Status {
	case backends.StatusCompleted:
		headers := map[string]string{}
		ct := ""
		for _, h := range r.Headers {
			if httpheader.IsHopByHop(h.Name) {
				continue
			}
			if old, ok := headers[h.Name]; ok {
				headers[h.Name] = old + ", " + h.Value
			} else {
				headers[h.Name] = h.Value
			}
			if strings.EqualFold(h.Name, "Content-Type") {
				ct = h.Value
			}
		}
		var result any
		if len(bytes.TrimSpace(r.Body)) > 0 && json.Valid(r.Body) {
			result = json.RawMessage(r.Body)
		} else {
			result = map[string]string{"response": string(r.Body), "content_type": ct}
		}
		var ms int64
		if !r.StartedAt.IsZero() && !r.CompletedAt.IsZero() {
			ms = r.CompletedAt.Sub(r.StartedAt).Milliseconds()
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{
			"correlation_id": r.ID, "status": status, "result": result, "headers": headers,
			"status_code": r.StatusCode, "processing_time_ms": ms, "completed_at": rfc3339(r.CompletedAt),
		})
	case backends.StatusFailed, backends.StatusCancelled:
		msg := r.Error
		if msg == "" {
			msg = "Processing failed"
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{
			"correlation_id": r.ID, "status": status, "error": msg, "completed_at": rfc3339(r.CompletedAt),
		})
	default:
		writeJSON(ctx, fasthttp.StatusAccepted, map[string]any{"correlation_id": r.ID, "status": status, "result": nil})
		ctx.Response.Header.Set("Retry-After", "1")
	}
}
