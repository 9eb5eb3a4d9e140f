package upstream

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// StreamThreshold is the largest answer, by its Content-Length, that a sync
// request reads whole before answering the client. A larger answer, or one
// whose length is not known up front (chunked, or ending when the app
// closes), streams from the app to the client through a few kilobytes of
// buffer, so that the memory a connection holds does not grow with the
// answer.
const StreamThreshold = 64 << 10

// maxAttempts bounds how often an idempotent request is sent again after its
// keep-alive connection turned out to be closed by the app (fasthttp's
// default for HostClient.Do).
const maxAttempts = fasthttp.DefaultMaxIdemponentCallAttempts

// maxInterim bounds the 1xx interim answers skipped before the final one.
const maxInterim = 16

// ErrTooLarge means a job's answer was larger than the caller allowed
// (results.max_body_size): it was not read. The error is a *TooLargeError.
var ErrTooLarge = errors.New("upstream: answer too large")

// TooLargeError is ErrTooLarge with the figures.
type TooLargeError struct {
	Size  int64 // the answer's Content-Length; -1 when it was chunked or close-delimited
	Limit int
}

func (e *TooLargeError) Error() string {
	if e.Size >= 0 {
		return fmt.Sprintf("the app's answer is %d bytes, over the limit of %d bytes", e.Size, e.Limit)
	}
	return fmt.Sprintf("the app's answer is over the limit of %d bytes", e.Limit)
}

func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// Stream says how a sync request's answer reaches the client when it
// streams (see StreamThreshold). The zero value streams without moving the
// client connection's deadlines.
type Stream struct {
	// ReadIdle bounds each wait for the next piece of the app's body: an
	// app that stops sending for this long ends the answer, truncated.
	// Zero: the deadline of the request still applies.
	ReadIdle time.Duration
	// Client is the client's connection. Each piece written to it gets
	// WriteIdle more time, so that a slow but live download is not cut by
	// the server's write timeout while a stalled one is.
	Client    net.Conn
	WriteIdle time.Duration
	// NoChunks says the client cannot take a chunked answer (it spoke
	// HTTP/1.0): an answer of unknown length is then read whole, up to the
	// pool's MaxResponseBodySize, and sent with its length.
	NoChunks bool
}

// exchange is one request and the way its answer's body is read.
type exchange struct {
	deadline time.Time
	// limit, when positive, bounds the body read whole (a job's answer); a
	// larger one fails with *TooLargeError.
	limit int
	// streams, when set, streams bodies over StreamThreshold into resp as
	// stream says (a sync request): the slot is then released when resp's
	// body stream is closed, not when roundTrip returns.
	streams bool
	stream  Stream
}

// do sends req and reads the answer's head into resp, retrying an
// idempotent request whose keep-alive connection was found closed. It
// reports whether the answer streams (the slot is then released when its
// body closes).
func (c *Client) do(req *fasthttp.Request, resp *fasthttp.Response, x *exchange) (streaming bool, err error) {
	skip := resp.SkipBody
	for attempt := 1; ; attempt++ {
		var retry bool
		streaming, retry, err = c.roundTrip(req, resp, x, skip)
		if err == nil || !retry || attempt >= maxAttempts || !idempotent(req) || !time.Now().Before(x.deadline) {
			return streaming, err
		}
	}
}

func idempotent(req *fasthttp.Request) bool {
	h := &req.Header
	return h.IsGet() || h.IsHead() || h.IsPut()
}

// roundTrip is one attempt on one connection. retry reports that the
// request may be sent again on another connection: it failed while being
// written, or before any answer arrived.
func (c *Client) roundTrip(req *fasthttp.Request, resp *fasthttp.Response, x *exchange, skip bool) (streaming, retry bool, err error) {
	timeout := time.Until(x.deadline)
	if timeout <= 0 {
		return false, false, fasthttp.ErrTimeout
	}
	cc, err := c.hc.AcquireConn(timeout, req.ConnectionClose())
	if err != nil {
		return false, false, err
	}
	conn := cc.Conn()
	if err = conn.SetDeadline(x.deadline); err != nil {
		c.hc.CloseConn(cc)
		return false, true, err
	}
	bw := c.hc.AcquireWriter(conn)
	err = req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	c.hc.ReleaseWriter(bw)
	if err != nil {
		c.hc.CloseConn(cc)
		return false, true, err
	}

	resp.Reset()
	resp.Header.SetNoDefaultContentType(true) // the app's answer, not ours
	br := c.hc.AcquireReader(conn)
	if err = readHead(resp, br); err != nil {
		c.hc.ReleaseReader(br)
		c.hc.CloseConn(cc)
		return false, true, err
	}
	keep := !req.ConnectionClose() && !resp.ConnectionClose()
	code := resp.StatusCode()
	if skip || req.Header.IsHead() || code == fasthttp.StatusNoContent || code == fasthttp.StatusNotModified || code < 200 {
		resp.SkipBody = true
		c.hc.ReleaseReader(br)
		if keep {
			c.hc.ReleaseConn(cc)
		} else {
			c.hc.CloseConn(cc)
		}
		return false, false, nil
	}

	size := resp.Header.ContentLength() // -1 chunked, -2 until the app closes
	if size == -2 {
		keep = false
	}
	if x.streams && (size > StreamThreshold || (size < 0 && !x.stream.NoChunks)) {
		// The closure names fasthttp's unexported connection type; it is
		// allocated only for an answer that streams.
		c.streamBody(resp, br, conn, size, x, func(reuse bool) {
			c.hc.ReleaseReader(br)
			if keep && reuse {
				c.hc.ReleaseConn(cc)
			} else {
				c.hc.CloseConn(cc)
			}
		})
		return true, false, nil
	}

	limit := x.limit
	if x.streams {
		// A small answer, or one of unknown length for a client that
		// cannot take chunks.
		limit = c.hc.MaxResponseBodySize
	}
	err = resp.ReadBody(br, limit)
	c.hc.ReleaseReader(br)
	if err != nil {
		c.hc.CloseConn(cc)
		if errors.Is(err, fasthttp.ErrBodyTooLarge) {
			return false, false, &TooLargeError{Size: int64(size), Limit: limit}
		}
		return false, false, err
	}
	if keep {
		c.hc.ReleaseConn(cc)
	} else {
		c.hc.CloseConn(cc)
	}
	return false, false, nil
}

// readHead reads the status line and fields of the final answer, skipping
// interim 1xx answers other than 101.
func readHead(resp *fasthttp.Response, br *bufio.Reader) error {
	for range maxInterim {
		if err := resp.Header.Read(br); err != nil {
			return err
		}
		if code := resp.StatusCode(); code < 100 || code > 199 || code == fasthttp.StatusSwitchingProtocols {
			return nil
		}
	}
	return errors.New("too many interim 1xx answers")
}
