// Package connguard wraps the listeners of openhqm's HTTP servers. It does
// two things the HTTP server cannot be told to do:
//
//   - It follows each connection's request framing (RFC 9112) on the raw
//     bytes, before the server parses and normalises them, and cuts the
//     stream at the first byte of anything malformed or ambiguous: a header
//     name that is not a token or has whitespace before its colon, a bare LF
//     or CR, obsolete line folding, a control character in a value,
//     conflicting or duplicate Content-Length and Transfer-Encoding, a bad
//     chunk size or terminator. The server then reads an error instead of
//     the rest, and answers 400 at once (a request whose lines end in bare
//     LF would otherwise wait for a CRLF that never comes until the read
//     timeout). A lenient application behind the proxy never sees such a
//     request, so it cannot frame it differently.
//   - It bounds the number of open connections: the newest connection above
//     the limit gets a 503 and is closed, so the process never runs out of
//     descriptors or memory, and never stalls accepting.
package connguard

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a guarded listener.
type Options struct {
	// MaxConns bounds the connections open at once; 0: no bound.
	MaxConns int
	// OnReject, when set, is called for each connection refused for the
	// bound (metrics).
	OnReject func()
}

// Listener is a guarded net.Listener.
type Listener struct {
	net.Listener
	opts Options
	open atomic.Int64

	rejecting chan struct{} // bounds the goroutines answering refused connections
	wg        sync.WaitGroup
}

// maxRejecting bounds the refused connections answered at once; beyond it a
// refused connection is closed without an answer, so that a flood costs no
// more than this many goroutines.
const maxRejecting = 64

// Wrap returns ln guarded.
func Wrap(ln net.Listener, opts Options) *Listener {
	return &Listener{Listener: ln, opts: opts, rejecting: make(chan struct{}, maxRejecting)}
}

// Open is the number of connections open now.
func (l *Listener) Open() int64 { return l.open.Load() }

// Accept returns the next connection within the bound; those above it are
// answered 503 and closed here.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if n := l.open.Add(1); l.opts.MaxConns > 0 && n > int64(l.opts.MaxConns) {
			l.open.Add(-1)
			l.reject(c)
			continue
		}
		return &conn{Conn: c, l: l}, nil
	}
}

// Close closes the listener and waits for the refused connections still
// being answered.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	l.wg.Wait()
	return err
}

const rejectBody = `{"error":"too many open connections; retry later"}` + "\n"

var rejectAnswer = []byte("HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: application/json\r\n" +
	"Retry-After: 1\r\n" +
	"Connection: close\r\n" +
	"Content-Length: " + strconv.Itoa(len(rejectBody)) + "\r\n\r\n" + rejectBody)

// reject answers c 503 and closes it politely: after the answer it shuts
// its side down and reads what the client sent for a moment, so that the
// close does not reset the connection before the client read the answer.
func (l *Listener) reject(c net.Conn) {
	if l.opts.OnReject != nil {
		l.opts.OnReject()
	}
	select {
	case l.rejecting <- struct{}{}:
	default:
		c.Close()
		return
	}
	l.wg.Go(func() {
		defer func() { <-l.rejecting }()
		defer c.Close()
		deadline := time.Now().Add(time.Second)
		_ = c.SetDeadline(deadline)
		if _, err := c.Write(rejectAnswer); err != nil {
			return
		}
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		var buf [512]byte
		for {
			if _, err := c.Read(buf[:]); err != nil {
				return
			}
		}
	})
}

// conn is an accepted connection whose reads pass through a framer.
type conn struct {
	net.Conn
	l      *Listener
	f      framer
	err    error
	closed atomic.Bool
}

// Read returns the bytes of well-formed requests; at the first malformed
// byte it returns what came before it with an *Error, and the error alone
// from then on.
func (c *conn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if k, ferr := c.f.feed(p[:n]); ferr != nil {
			c.err = ferr
			return k, ferr
		}
	}
	return n, err
}

// CloseWrite shuts the connection's write side down, when the underlying
// connection can (a lingering close: answer, then drain what the client
// still sends, so the close does not reset the connection under it).
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

func (c *conn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.open.Add(-1)
	}
	return c.Conn.Close()
}

// IsMalformed reports whether err comes from a guarded connection whose
// stream turned malformed, and the client-safe reason.
func IsMalformed(err error) (reason string, ok bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Error(), true
	}
	return "", false
}

// NetConn returns the connection beneath the guard, for a server that has
// answered and closes lingering: what the client still sends is dropped
// unread by the guard.
func (c *conn) NetConn() net.Conn { return c.Conn }
