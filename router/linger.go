package router

import (
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// A connection whose request body was refused keeps reading (and dropping)
// what the client still sends for at most lingerTime, each read waiting at
// most lingerIdle, like nginx's lingering close.
const (
	lingerTime = 5 * time.Second
	lingerIdle = time.Second
)

// answerAndLinger writes ctx's answer on the client's connection, shuts the
// connection's write side and reads what the client still sends until it
// stops, closes, or lingerTime passes. Closing a socket with unread bytes
// makes the kernel reset the connection: a client still uploading then gets
// a write error instead of the answer, and may lose the answer itself.
// fasthttp writes the answer again afterwards; that write fails on the shut
// side and is dropped. Connections that cannot be half-closed are left to
// fasthttp's plain answer-and-close.
func answerAndLinger(ctx *fasthttp.RequestCtx) {
	conn := ctx.Conn()
	// The bytes still coming are dropped from the connection beneath any
	// wrapper (the guard that checks request framing, TLS).
	raw := conn
	for {
		u, ok := raw.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		raw = u.NetConn()
	}
	hc, ok := conn.(interface{ CloseWrite() error }) // TCP, TLS and the guard's connection can
	if !ok {
		return
	}
	end := time.Now().Add(lingerTime)
	_ = conn.SetWriteDeadline(end)
	if _, err := ctx.Response.WriteTo(conn); err != nil || hc.CloseWrite() != nil {
		return
	}
	drain(raw, end)
}

func drain(conn net.Conn, end time.Time) {
	buf := make([]byte, 32<<10) // the error path: not worth a pool
	for {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		next := now.Add(lingerIdle)
		if next.After(end) {
			next = end
		}
		_ = conn.SetReadDeadline(next)
		if _, err := conn.Read(buf); err != nil {
			return
		}
	}
}
