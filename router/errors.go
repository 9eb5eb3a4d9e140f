package router

import (
	"encoding/json"

	"github.com/valyala/bytebufferpool"
	"github.com/valyala/fasthttp"
)

// writeError answers with a JSON error body {"error": msg, "request_id": id}.
// msg is a fixed, client-safe text: never an upstream error (which may name
// internal addresses). id contains only request-id characters (see
// validRequestID), so it needs no escaping.
func writeError(ctx *fasthttp.RequestCtx, code int, msg string, id []byte) {
	ctx.Response.Reset()
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	w := ctx.Response.BodyWriter()
	buf := bytebufferpool.Get()
	buf.B = append(buf.B, `{"error":`...)
	buf.B = appendJSONString(buf.B, msg)
	if len(id) > 0 {
		buf.B = append(buf.B, `,"request_id":"`...)
		buf.B = append(buf.B, id...)
		buf.B = append(buf.B, '"')
	}
	buf.B = append(buf.B, "}\n"...)
	_, _ = w.Write(buf.B)
	bytebufferpool.Put(buf)
	if len(id) > 0 {
		ctx.Response.Header.SetBytesV(headerRequestID, id)
	}
}

func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s)
			return append(dst, q...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// writeJSON answers with v encoded as JSON (admin and error paths only).
func writeJSON(ctx *fasthttp.RequestCtx, code int, v any) {
	ctx.SetStatusCode(code)
	ctx.SetContentType("application/json")
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		b = []byte(`{"error":"cannot encode the answer"}`)
	}
	ctx.SetBody(append(b, '\n'))
}
