package connguard

import (
	"github.com/openhqm/openhqm/internal/httpheader"
)

// Error is why a connection's request stream was refused. Reason is a fixed,
// client-safe text: it never quotes the bytes that were sent.
type Error struct{ Reason string }

func (e *Error) Error() string { return "malformed request: " + e.Reason }

// The reasons a request stream is refused.
var (
	errBareLF        = &Error{"a line ends in a bare LF; lines end in CRLF (RFC 9112 section 2.2)"}
	errBareCR        = &Error{"a CR not followed by LF (RFC 9112 section 2.2)"}
	errFold          = &Error{"a header line starts with whitespace (obsolete line folding, RFC 9112 section 5.2)"}
	errNameSpace     = &Error{"whitespace in or after a header field name (RFC 9112 section 5.1)"}
	errName          = &Error{"a header field name is not a token (RFC 9110 section 5.1)"}
	errValue         = &Error{"a header field value holds a control character (RFC 9110 section 5.5)"}
	errDupLength     = &Error{"more than one Content-Length field"}
	errLength        = &Error{"Content-Length is not a decimal number of at most 18 digits"}
	errDupTE         = &Error{"more than one Transfer-Encoding field"}
	errTE            = &Error{"Transfer-Encoding other than chunked; only chunked is accepted"}
	errTE10          = &Error{"Transfer-Encoding in an HTTP/1.0 request (RFC 9112 section 6.1)"}
	errLengthAndTE   = &Error{"both Content-Length and Transfer-Encoding (RFC 9112 section 6.3)"}
	errDupHost       = &Error{"more than one Host field"}
	errChunkSize     = &Error{"a chunk size is not a hexadecimal number of at most 15 digits"}
	errChunkExt      = &Error{"a chunk extension holds a control character"}
	errChunkTerm     = &Error{"chunk data not followed by CRLF"}
	errStartCRLF     = &Error{"an empty line before the request line ends in a bare CR"}
	errRequestLineCR = &Error{"the request line holds a CR not followed by LF"}
)

type state uint8

const (
	sStart       state = iota // before a request line; empty lines are skipped (RFC 9112 section 2.2)
	sStartCR                  // a CR before the request line
	sRequestLine              // in the request line
	sRequestCR                // the CR ending the request line
	sFieldStart               // at the start of a header (or trailer) line
	sName                     // in a field name
	sValue                    // in a field value
	sValueCR                  // the CR ending a field line
	sEndCR                    // the CR of the empty line ending the head (or trailers)
	sBody                     // in a Content-Length body
	sChunkSize                // in a chunk size
	sChunkOWS                 // whitespace after a chunk size
	sChunkExt                 // in a chunk extension
	sChunkSizeCR              // the CR ending a chunk-size line
	sChunkData                // in chunk data
	sChunkDataCR              // the CR after chunk data
	sChunkDataLF              // the LF after chunk data
)

const (
	maxName   = len("transfer-encoding") // longer names are none of the fields framing depends on
	maxValue  = 64                       // longer values are no valid Content-Length or Transfer-Encoding
	maxLength = 18                       // digits of a Content-Length: below 2^63
	maxChunk  = 15                       // hex digits of a chunk size: below 2^63
)

// framer follows the framing of a stream of HTTP/1.1 requests, byte by byte,
// and refuses what is ambiguous or malformed: it finds where each head ends
// and where each body ends exactly as RFC 9112 says, so that it always
// looks at heads when the server does. It keeps no request bytes beyond a
// few short fields; the zero value is ready at the start of a stream.
type framer struct {
	st      state
	trailer bool // the fields being read are a chunked body's trailers

	version [8]byte // the last bytes of the request line
	http10  bool

	name     [maxName]byte
	nName    int
	value    [maxValue]byte
	nValue   int // bytes kept, trailing whitespace included
	valueOWS bool

	length   int64 // Content-Length, or the size of the current chunk
	hasLen   bool
	chunked  bool
	hasTE    bool
	hasHost  bool
	digits   int
	consumed int64
}

// feed checks the next bytes of the stream. It returns how many of them
// belong to well-formed requests and, when the stream turned malformed,
// why; the framer then stays in error.
func (f *framer) feed(p []byte) (int, error) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch f.st {
		case sStart:
			switch c {
			case '\n':
			case '\r':
				f.st = sStartCR
			default:
				f.beginRequest()
				f.requestByte(c)
			}
		case sStartCR:
			if c != '\n' {
				return i, errStartCRLF
			}
			f.st = sStart
		case sRequestLine:
			switch c {
			case '\r':
				f.st = sRequestCR
			case '\n':
				return i, errBareLF
			default:
				f.requestByte(c)
			}
		case sRequestCR:
			if c != '\n' {
				return i, errRequestLineCR
			}
			f.http10 = string(f.version[:]) == "HTTP/1.0"
			f.st = sFieldStart
		case sFieldStart:
			switch {
			case c == '\r':
				f.st = sEndCR
			case c == '\n':
				return i, errBareLF
			case c == ' ' || c == '\t':
				return i, errFold
			case httpheader.TokenChar(c):
				f.nName, f.nValue, f.valueOWS = 0, 0, false
				f.nameByte(c)
				f.st = sName
			default:
				return i, errName
			}
		case sName:
			switch {
			case c == ':':
				f.st = sValue
			case c == ' ' || c == '\t':
				return i, errNameSpace
			case httpheader.TokenChar(c):
				f.nameByte(c)
			default:
				return i, errName
			}
		case sValue:
			switch {
			case c == '\r':
				f.st = sValueCR
			case c == '\n':
				return i, errBareLF
			case (c < 0x20 && c != '\t') || c == 0x7f:
				return i, errValue
			default:
				f.valueByte(c)
			}
		case sValueCR:
			if c != '\n' {
				return i, errBareCR
			}
			if err := f.field(); err != nil {
				return i, err
			}
			f.st = sFieldStart
		case sEndCR:
			if c != '\n' {
				return i, errBareCR
			}
			if err := f.endHead(); err != nil {
				return i, err
			}
		case sBody:
			n := min(int64(len(p)-i), f.length-f.consumed)
			f.consumed += n
			i += int(n) - 1
			if f.consumed == f.length {
				f.st = sStart
			}
		case sChunkSize:
			switch {
			case hexDigit(c) >= 0:
				f.digits++
				if f.digits > maxChunk {
					return i, errChunkSize
				}
				f.length = f.length<<4 | int64(hexDigit(c))
			case f.digits == 0:
				return i, errChunkSize
			case c == ' ' || c == '\t':
				f.st = sChunkOWS
			case c == ';':
				f.st = sChunkExt
			case c == '\r':
				f.st = sChunkSizeCR
			default:
				return i, errChunkSize
			}
		case sChunkOWS:
			switch c {
			case ' ', '\t':
			case '\r':
				f.st = sChunkSizeCR
			default:
				return i, errChunkSize
			}
		case sChunkExt:
			switch {
			case c == '\r':
				f.st = sChunkSizeCR
			case (c < 0x20 && c != '\t') || c == 0x7f:
				return i, errChunkExt
			}
		case sChunkSizeCR:
			if c != '\n' {
				return i, errBareCR
			}
			if f.length == 0 {
				f.trailer = true
				f.st = sFieldStart
			} else {
				f.consumed = 0
				f.st = sChunkData
			}
		case sChunkData:
			n := min(int64(len(p)-i), f.length-f.consumed)
			f.consumed += n
			i += int(n) - 1
			if f.consumed == f.length {
				f.st = sChunkDataCR
			}
		case sChunkDataCR:
			if c != '\r' {
				return i, errChunkTerm
			}
			f.st = sChunkDataLF
		case sChunkDataLF:
			if c != '\n' {
				return i, errChunkTerm
			}
			f.beginChunk()
		}
	}
	return len(p), nil
}

func (f *framer) beginRequest() {
	*f = framer{st: sRequestLine}
}

func (f *framer) beginChunk() {
	f.st, f.length, f.digits, f.consumed = sChunkSize, 0, 0, 0
}

// requestByte records what framing needs of the request line: its last
// eight bytes, the version. The rest of the line is the server's to check.
func (f *framer) requestByte(c byte) {
	copy(f.version[:], f.version[1:])
	f.version[len(f.version)-1] = c
}

func (f *framer) nameByte(c byte) {
	if f.nName < maxName {
		f.name[f.nName] = lower(c)
	}
	f.nName++
}

func (f *framer) valueByte(c byte) {
	if f.nValue == 0 && (c == ' ' || c == '\t') {
		return // leading OWS
	}
	if f.nValue < maxValue {
		f.value[f.nValue] = c
	}
	f.nValue++
}

// fieldValue is the kept value without trailing whitespace; ok is false
// when the value was longer than what is kept.
func (f *framer) fieldValue() (v []byte, ok bool) {
	if f.nValue > maxValue {
		return nil, false
	}
	v = f.value[:f.nValue]
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v, true
}

// field checks one complete header line against the framing rules. A
// trailer may not carry framing fields; they are ignored there, as RFC 9112
// section 7.1.2 says.
func (f *framer) field() error {
	if f.trailer || f.nName > maxName {
		return nil
	}
	switch string(f.name[:f.nName]) {
	case "content-length":
		if f.hasLen {
			return errDupLength
		}
		f.hasLen = true
		v, ok := f.fieldValue()
		if !ok || len(v) == 0 || len(v) > maxLength {
			return errLength
		}
		var n int64
		for _, c := range v {
			if c < '0' || c > '9' {
				return errLength
			}
			n = n*10 + int64(c-'0')
		}
		f.length = n
	case "transfer-encoding":
		if f.hasTE {
			return errDupTE
		}
		f.hasTE = true
		if f.http10 {
			return errTE10
		}
		v, ok := f.fieldValue()
		if !ok || !equalFold(v, "chunked") {
			return errTE
		}
		f.chunked = true
	case "host":
		if f.hasHost {
			return errDupHost
		}
		f.hasHost = true
	}
	return nil
}

// endHead decides what follows a head (or the trailers of a chunked body).
func (f *framer) endHead() error {
	switch {
	case f.trailer:
		f.st = sStart
	case f.hasLen && f.hasTE:
		return errLengthAndTE
	case f.chunked:
		f.beginChunk()
	case f.hasLen && f.length > 0:
		f.consumed = 0
		f.st = sBody
	default:
		// No body: a request without Content-Length or Transfer-Encoding
		// has none (RFC 9112 section 6.3), whatever its method.
		f.st = sStart
	}
	return nil
}

func hexDigit(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}
