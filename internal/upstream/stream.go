package upstream

import (
	"bufio"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// body is an answer's body streaming from the app's connection. It is
// resp's body stream: fasthttp's server reads it while writing the answer
// to the client and closes it once written, or once the client went away
// (with the write error); resetting the response closes it too. Close
// gives the app's connection back to the pool when the body was read to its
// end, else closes it, and then releases the request's concurrency slot:
// the slot is held while the app is still sending, because the app is busy
// for as long as that lasts.
//
// Read and CloseWithError are called by the one goroutine serving the
// client's connection, never concurrently.
type body struct {
	src     *fasthttp.Response // holds the decoding reader (chunks, length) over br
	r       io.Reader
	conn    net.Conn // the app's
	stream  Stream
	release func(reuse bool) // gives back br and the app's connection
	c       *Client          // whose slot the request holds
	eof     bool
}

// streamBody makes resp's body a stream of the rest of the app's answer,
// read from br. size is the answer's Content-Length, -1 when chunked, -2
// when it ends with the connection.
func (c *Client) streamBody(resp *fasthttp.Response, br *bufio.Reader, conn net.Conn, size int, x *exchange, release func(bool)) {
	src := fasthttp.AcquireResponse()
	// src frames the body as resp's header says: a length, chunks, or
	// until the app closes.
	src.Header.SetContentLength(size)
	src.StreamBody = true
	_ = src.ReadBody(br, 0) // with StreamBody set it only attaches the reader
	b := &body{src: src, r: src.BodyStream(), conn: conn, stream: x.stream, release: release, c: c}
	if size < 0 {
		size = -1 // the client gets chunks
	}
	// SetBodyStream resets the header's framing only; the app's fields stay.
	resp.SetBodyStream(b, size)
}

// Read reads the next piece of the app's body, giving the app
// Stream.ReadIdle to send it and the client Stream.WriteIdle to take it.
func (b *body) Read(p []byte) (int, error) {
	if b.r == nil {
		return 0, io.ErrClosedPipe
	}
	if b.stream.ReadIdle > 0 || b.stream.Client != nil {
		now := time.Now()
		if b.stream.ReadIdle > 0 {
			_ = b.conn.SetReadDeadline(now.Add(b.stream.ReadIdle))
		}
		if b.stream.Client != nil && b.stream.WriteIdle > 0 {
			_ = b.stream.Client.SetWriteDeadline(now.Add(b.stream.WriteIdle))
		}
	}
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// CloseWithError ends the stream; err is why the writer stopped, nil when
// it wrote everything. It implements fasthttp.ReadCloserWithError.
func (b *body) CloseWithError(err error) error {
	if b.r == nil {
		return nil
	}
	b.r = nil
	_ = b.src.CloseBodyStream()
	fasthttp.ReleaseResponse(b.src)
	b.src = nil
	b.release(b.eof && err == nil)
	b.c.finish()
	return nil
}

var _ fasthttp.ReadCloserWithError = (*body)(nil)
