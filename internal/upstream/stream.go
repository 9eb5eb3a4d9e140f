package upstream

import (
	"bufio"
	"io"
	"net"
	"sync"
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
	br      *bufio.Reader // beneath r: what the app already sent
	conn    net.Conn      // the app's
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
	b := &body{src: src, r: src.BodyStream(), br: br, conn: conn, stream: x.stream, release: release, c: c}
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

// SupportsBodyWriteTo tells fasthttp's server that WriteTo writes what Read
// would read, so it may frame WriteTo's pieces as chunks directly.
func (b *body) SupportsBodyWriteTo() bool { return true }

// pieceSize bounds what WriteTo gathers before writing it to the client.
const pieceSize = 32 << 10

var pieces = sync.Pool{New: func() any { b := make([]byte, pieceSize); return &b }}

// WriteTo copies the rest of the body to w (fasthttp's server calls it to
// write the answer). Each piece gathers what the app has already sent, up
// to 32 KiB, so that the client gets large writes (and, for a chunked
// answer, large chunks, each flushed) rather than the app's own chunk sizes
// with a flush and deadline updates each.
func (b *body) WriteTo(w io.Writer) (int64, error) {
	bp := pieces.Get().(*[]byte)
	defer pieces.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := b.Read(buf) // moves the deadlines
		for err == nil && n < len(buf) && b.br.Buffered() > 0 {
			var m int
			m, err = b.r.Read(buf[n:])
			n += m
		}
		if err == io.EOF {
			b.eof = true
		}
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		switch {
		case err == io.EOF:
			return total, nil
		case err != nil:
			return total, err
		}
	}
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

var (
	_ fasthttp.ReadCloserWithError = (*body)(nil)
	_ fasthttp.BodyWriterTo        = (*body)(nil)
)
