package redis

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/openhqm/openhqm/backends"
	"github.com/openhqm/openhqm/backends/wire"
)

// Stream entry layout, shared by every process that reads or writes the
// stream (and by the scripts, which copy m and b between the stream, the
// delayed-jobs hash and the dead-letter stream without decoding them):
//
//	m  the job without its body: wire.AppendFields
//	b  the request body, raw bytes (never base64)
//	a  deliveries before this entry (decimal; absent for a new job). A nacked
//	   job is written again as a new entry, so its attempts continue from here.
//
// m followed by b is the job's wire encoding. Keeping the body in a field of
// its own leaves entries byte for byte what they were before the codec was
// shared, so processes of either release read each other's entries during a
// rolling upgrade.
const (
	fieldMeta     = "m"
	fieldBody     = "b"
	fieldAttempts = "a"
)

var errBadEntry = errors.New("malformed job entry")

// decodeEntry decodes a stream entry's fields into a job and the attempts
// made before this entry. Decoding errors wrap wire.ErrMalformed or errBadEntry.
func decodeEntry(values map[string]any) (*backends.Job, int, error) {
	meta, _ := values[fieldMeta].(string)
	body, _ := values[fieldBody].(string)
	j, err := wire.DecodeFields(meta, body)
	if err != nil {
		return nil, 0, err
	}
	before := 0
	if a, ok := values[fieldAttempts].(string); ok && a != "" {
		if before, err = strconv.Atoi(a); err != nil || before < 0 {
			return nil, 0, fmt.Errorf("%w: attempts %q", errBadEntry, a)
		}
	}
	return j, before, nil
}

// entry is what one enqueue stores: a job's m and b fields and, when rkey is
// set, its pending result record (value rval at key rkey).
type entry struct {
	meta, body []byte
	rkey       string
	rval       []byte
}

func (e entry) size() int { return len(e.body) + len(e.rval) }
