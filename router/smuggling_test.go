package router

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// smuggling is a table of request streams that a proxy and the app behind it
// could frame differently (request smuggling), or that a proxy must refuse.
// Each is sent raw on one connection, whose write side the client then
// shuts down (so the server closes it after the last answer). The client must get exactly the
// answers listed (a 4xx for a refused request, after which the connection
// closes), and the app must receive exactly the requests listed, as
// "METHOD target body": one request per request the client framed, never a
// request hidden in a body, a chunk or a header.
//
// The cases follow RFC 9112 (sections 2.2, 5, 6, 7 and 9.3), the classes of
// discrepancies the HTTP Garden reported for proxies, and the kinds of
// inputs net/http's own framing tests use; they are written for openhqm.
var smuggling = []struct {
	name     string
	raw      string
	codes    []int
	upstream []string
}{
	// Content-Length and Transfer-Encoding together.
	{"CL then TE", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", []int{400}, nil},
	{"TE then CL", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", []int{400}, nil},
	{"TE and CL 0", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n", []int{400}, nil},
	{"TE identity and CL", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello", []int{400}, nil},

	// Transfer-Encoding obfuscations.
	{"TE leading space", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:   chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{200}, []string{"POST /a hello"}},
	{"TE leading tab", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{200}, []string{"POST /a hello"}},
	{"TE trailing space and tab", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked \t\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{200}, []string{"POST /a hello"}},
	{"TE upper case", "POST /a HTTP/1.1\r\nHost: x\r\ntransfer-encoding: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{200}, []string{"POST /a hello"}},
	{"TE chunked, identity", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"TE identity, chunked", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"TE chunked twice in one field", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"TE two fields", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"TE chunked and identity fields", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"TE xchunked", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"TE quoted", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \"chunked\"\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"TE gzip", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"TE space before colon", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"TE tab before colon", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding\t: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"TE folded value", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"TE folded name line", "POST /a HTTP/1.1\r\nHost: x\r\n Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"TE vertical tab", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0bchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"TE NUL", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\x00\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"TE look-alike name", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{200, 400}, []string{"POST /a "}},
	{"TE in HTTP/1.0", "POST /a HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"TE bare LF in head", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\n\r\n5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},

	// Content-Length forms.
	{"CL duplicate same", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", []int{400}, nil},
	{"CL duplicate different", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 30\r\n\r\nhelloGET /s HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}, nil},
	{"CL list", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello", []int{400}, nil},
	{"CL plus sign", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", []int{400}, nil},
	{"CL minus sign", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\nhello", []int{400}, nil},
	{"CL hex", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello", []int{400}, nil},
	{"CL inner space", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5 5\r\n\r\nhello", []int{400}, nil},
	{"CL empty", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\nhello", []int{400}, nil},
	{"CL underscore digit", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1_0\r\n\r\nhello", []int{400}, nil},
	{"CL overflow", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551621\r\n\r\nhello", []int{400}, nil},
	{"CL above body limit", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999999999\r\n\r\nhello", []int{413}, nil},
	{"CL leading zeros", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 005\r\n\r\nhello", []int{200}, []string{"POST /a hello"}},
	{"CL with OWS", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length:  5 \t\r\n\r\nhello", []int{200}, []string{"POST /a hello"}},
	{"CL space before colon", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello", []int{400}, nil},
	{"CL body holds a request", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 35\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", []int{200}, []string{"POST /a GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"}},
	{"CL on GET", "GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", []int{200}, []string{"GET /a hello"}},

	// Chunked bodies.
	{"chunk size overflow", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"chunk size 64-bit wrap", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"chunk size 0x", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"chunk size sign", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"chunk size leading space", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"chunk size empty", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"chunk size bare LF", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"chunk data bare LF", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", []int{400}, nil},
	{"chunk data no CRLF", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", []int{400}, nil},
	{"chunk data longer than size", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"chunk ext", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b;c=\"d\"\r\nhello\r\n0\r\n\r\n", []int{200}, []string{"POST /a hello"}},
	{"chunk ext bare LF", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"chunk ext bare CR", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"chunk size space ext", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 ;a\r\nhello\r\n0\r\n\r\n", []int{400}, nil},
	{"chunk upper hex and zeros", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n00A\r\nhelloworld\r\n000\r\n\r\n", []int{200}, []string{"POST /a helloworld"}},
	{"chunk body holds a request", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n23\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n\r\n0\r\n\r\n", []int{200}, []string{"POST /a GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"}},
	{"trailer", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: v\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n", []int{200, 200}, []string{"POST /a hello", "GET /b "}},
	{"trailer bad name", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX T: v\r\n\r\n", []int{400}, nil},
	{"trailer bare LF", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: v\n\r\n", []int{400}, nil},
	{"last chunk without trailer end", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nGET /s HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}, nil},

	// Host.
	{"duplicate Host", "GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", []int{400}, nil},
	{"duplicate Host case", "GET /a HTTP/1.1\r\nHost: x\r\nhOST: y\r\n\r\n", []int{400}, nil},
	{"no Host in HTTP/1.1", "GET /a HTTP/1.1\r\nX-A: b\r\n\r\n", []int{400}, nil},

	// Request targets and methods.
	{"absolute-form", "GET http://other.example/a?q=1 HTTP/1.1\r\nHost: x\r\n\r\n", []int{200}, []string{"GET /a?q=1 "}},
	{"CONNECT authority-form", "CONNECT other.example:443 HTTP/1.1\r\nHost: other.example:443\r\n\r\nGET /s HTTP/1.1\r\nHost: x\r\n\r\n", []int{405}, nil},
	{"CONNECT with a path", "CONNECT /a HTTP/1.1\r\nHost: x\r\n\r\n", []int{405}, nil},
	{"asterisk-form GET", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}, nil},
	{"space in target", "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}, nil},
	{"NUL in target", "GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}, nil},
	{"bare CR in request line", "GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}, nil},
	{"leading empty lines", "\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n", []int{200}, []string{"GET /a "}},

	// Upgrade: never a tunnel; the app sees a plain request, and what follows
	// on the connection is the next request.
	{"Upgrade websocket", "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nGET /s HTTP/1.1\r\nHost: x\r\n\r\n", []int{200, 200}, []string{"GET /ws ", "GET /s "}},
	{"Upgrade h2c", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n", []int{200}, []string{"GET /a "}},
	{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", []int{400}, nil},

	// Expect.
	{"Expect 100-continue", "POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello", []int{100, 200}, []string{"POST /a hello"}},

	// HTTP/1.0 persistence.
	{"HTTP/1.0 keep-alive", "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\nGET /c HTTP/1.0\r\n\r\n", []int{200, 200}, []string{"GET /a ", "GET /b "}},
	{"HTTP/1.0 closes", "GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n", []int{200}, []string{"GET /a "}},
	{"HTTP/1.1 close", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n", []int{200}, []string{"GET /a "}},

	// Pipelining around a refused request: what comes after it is never read.
	{"pipelined after bad name", "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nX Bad: v\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n", []int{200, 400}, []string{"GET /a "}},
	{"pipelined after CL+TE", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}, nil},
	{"pipelined after bad chunk", "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}, nil},
	{"pipelined after too large", "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 20000000\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n", []int{413}, nil},
	{"pipelined after bare LF", "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\nHost: x\n\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n", []int{200, 400}, []string{"GET /a "}},
	{"three pipelined", "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiPOST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nyo\r\n0\r\n\r\n", []int{200, 200, 200}, []string{"GET /a ", "POST /b hi", "POST /c yo"}},
}

func TestSmuggling(t *testing.T) {
	p, rec := hygieneProxy(t)
	for _, tc := range smuggling {
		t.Run(tc.name, func(t *testing.T) {
			before := len(rec.received())
			ex := wire(t, p.addr, []byte(tc.raw), true, 5*time.Second)
			var got []string
			for _, r := range rec.received()[before:] {
				got = append(got, r.method+" "+r.uri+" "+r.body)
			}
			if !slices.Equal(ex.codes, tc.codes) {
				t.Errorf("answers %v %q, want %v", ex.codes, ex.bodies, tc.codes)
			}
			if !slices.Equal(got, tc.upstream) {
				t.Errorf("the app received %q, want %q", got, tc.upstream)
			}
			if n := len(ex.codes); n > 0 && ex.codes[n-1] >= 400 && ex.open {
				t.Errorf("connection left open after a refused request")
			}
			for i, c := range ex.codes {
				if c >= 400 && !strings.HasPrefix(ex.bodies[i], "{") {
					t.Errorf("answer %d: body %q is not JSON", c, ex.bodies[i])
				}
			}
		})
	}
}
