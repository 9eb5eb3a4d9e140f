package backends

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestAddAttemptKeepsTheLatest: the history is bounded, its entries are
// cut on a character boundary, and an append never writes into an array
// that an earlier copy of the record shares.
func TestAddAttemptKeepsTheLatest(t *testing.T) {
	var r Result
	for i := 1; i <= MaxHistory+5; i++ {
		r.AddAttempt(Attempt{Number: i, Error: strings.Repeat("é", MaxAttemptError)})
	}
	if len(r.History) != MaxHistory || r.History[0].Number != 6 || r.History[MaxHistory-1].Number != MaxHistory+5 {
		t.Fatalf("history kept %d entries, %d to %d; want the latest %d", len(r.History), r.History[0].Number,
			r.History[len(r.History)-1].Number, MaxHistory)
	}
	if e := r.History[0].Error; len(e) > MaxAttemptError || !utf8.ValidString(e) {
		t.Errorf("entry error of %d bytes, valid UTF-8 %v; want at most %d, valid", len(e), utf8.ValidString(e), MaxAttemptError)
	}
	kept := r
	r.AddAttempt(Attempt{Number: 100})
	kept.AddAttempt(Attempt{Number: 200})
	if r.History[len(r.History)-1].Number != 100 || kept.History[len(kept.History)-1].Number != 200 {
		t.Errorf("two copies' appends interfere: %d, %d", r.History[len(r.History)-1].Number, kept.History[len(kept.History)-1].Number)
	}
}
