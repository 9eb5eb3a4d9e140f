package connguard

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzFramer feeds arbitrary request streams to the framer, whole and cut
// into pieces at arbitrary points (as TCP delivers them), and checks:
//   - the verdict does not depend on where the stream was cut: the same
//     error at the same byte, or none;
//   - it accepts a prefix of what it was given, and all of it without error;
//   - a stream it accepts has no bare LF or CR, no header line starting
//     with whitespace, and no header name holding a space or control byte,
//     as far as a plain line scan of its heads can tell (see scanHeads).
func FuzzFramer(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\n",
		"GET / HTTP/1.1\nHost: x\n\n",
		"GET / HTTP/1.1\r\nX Bad: v\r\n\r\n",
		"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
		"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(s), uint16(7), uint16(3))
	}
	f.Fuzz(func(t *testing.T, stream []byte, cut1, cut2 uint16) {
		var whole framer
		n, err := whole.feed(stream)
		if n > len(stream) || (err == nil && n != len(stream)) {
			t.Fatalf("accepted %d of %d bytes, err %v", n, len(stream), err)
		}

		// The same stream in up to three pieces.
		a := min(int(cut1), len(stream))
		b := min(a+int(cut2), len(stream))
		var split framer
		var got int
		var serr error
		for _, piece := range [][]byte{stream[:a], stream[a:b], stream[b:]} {
			k, e := split.feed(piece)
			got += k
			if e != nil {
				serr = e
				break
			}
		}
		if serr != err || got != n {
			t.Fatalf("whole: %d, %v; cut at %d and %d: %d, %v", n, err, a, b, got, serr)
		}
		if err == nil {
			if bad := scanHeads(stream[:n], &whole); bad != "" {
				t.Fatalf("accepted a stream with %s: %q", bad, stream)
			}
		}
	})
}

// scanHeads checks an accepted stream that the framer ended outside any
// body (its state says so) and that holds no body at all: then every line
// is a request line or a header line, and each must end in CRLF, not start
// with whitespace (after the first line of a head), and name a field
// without spaces or control bytes; empty lines before a request line are
// skipped, as the server skips them. Streams with bodies are not checked: a
// body may hold anything.
func scanHeads(stream []byte, f *framer) string {
	if f.st != sStart || bytes.Contains(bytes.ToLower(stream), []byte("content-length")) ||
		bytes.Contains(bytes.ToLower(stream), []byte("transfer-encoding")) {
		return ""
	}
	lines := bytes.SplitAfter(stream, []byte("\n"))
	inHead := false
	for _, l := range lines {
		if len(l) == 0 || l[len(l)-1] != '\n' {
			continue // the end of the stream, mid-line
		}
		if !inHead && (len(l) == 1 || (len(l) == 2 && l[0] == '\r')) {
			continue // empty lines before a request line are skipped (RFC 9112 section 2.2)
		}
		if !bytes.HasSuffix(l, []byte("\r\n")) || bytes.Count(l, []byte("\r")) != 1 {
			return "a line not ending in CRLF"
		}
		body := l[:len(l)-2]
		switch {
		case len(body) == 0:
			inHead = false
		case !inHead:
			inHead = true // a request line
		default:
			name, _, ok := bytes.Cut(body, []byte(":"))
			if !ok || len(name) == 0 {
				return "a header line without a name"
			}
			for _, c := range name {
				if c <= ' ' || c >= 0x7f {
					return "a header name with a space or control byte"
				}
			}
		}
	}
	return ""
}

// FuzzFramerAgrees checks the framer against the server's own parser: on a
// stream the framer accepts, every request fasthttp reads ends exactly where
// the framer ends one. A request fasthttp would frame differently (and so
// pass on to the app as a request the framer never saw) is the disagreement
// request smuggling is made of.
func FuzzFramerAgrees(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: v\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /a HTTP/1.0\r\nContent-Length: 1\r\n\r\nxGET /b HTTP/1.0\r\n\r\n",
		"\r\n\nGET / HTTP/1.1\r\nHost: x\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 20\r\n\r\n--b--\r\n12345678901GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		// Where the framer ends requests, byte by byte.
		var fr framer
		var ends []int
		for i := range stream {
			before := fr.st
			if _, err := fr.feed(stream[i : i+1]); err != nil {
				return // refused: the server reads an error at that byte
			}
			if fr.st == sStart && before != sStart && before != sStartCR {
				ends = append(ends, i+1)
			}
		}
		// Where fasthttp ends them.
		src := bytes.NewReader(stream)
		br := bufio.NewReader(src)
		for n := 0; ; n++ {
			var req fasthttp.Request
			err := req.Read(br)
			if err == nil && req.MayContinue() {
				err = req.ContinueReadBody(br, 0) // the server answers 100 Continue, then reads it
			}
			if err != nil {
				return // the server answers an error and closes
			}
			end := len(stream) - src.Len() - br.Buffered()
			if n >= len(ends) || ends[n] != end {
				t.Fatalf("fasthttp ends request %d at byte %d; the framer ends requests at %v\n%q", n+1, end, ends, stream)
			}
		}
	})
}
