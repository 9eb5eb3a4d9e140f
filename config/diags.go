package config

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// Load keeps at most this many errors and this many warnings. A broken or
// hostile file can have a problem on every line (16 KiB of random bytes made
// half a megabyte of output), and nobody reads past the first screens: the
// rest are counted and summed up in one last diagnostic.
const (
	maxErrors   = 100
	maxWarnings = 100
)

// diagSink collects diagnostics up to the limits and counts the rest.
type diagSink struct {
	kept                hcl.Diagnostics
	errs, warns         int // kept or not
	lostErrs, lostWarns int
	firstLost           *hcl.Range // where the first left-out problem is
}

func (s *diagSink) add(ds ...*hcl.Diagnostic) {
	for _, d := range ds {
		if d.Severity == hcl.DiagError {
			s.errs++
			if s.errs > maxErrors {
				s.lose(d, &s.lostErrs)
				continue
			}
		} else {
			s.warns++
			if s.warns > maxWarnings {
				s.lose(d, &s.lostWarns)
				continue
			}
		}
		s.kept = append(s.kept, d)
	}
}

func (s *diagSink) lose(d *hcl.Diagnostic, n *int) {
	*n++
	if s.firstLost == nil && d.Subject != nil {
		r := *d.Subject
		s.firstLost = &r
	}
}

// full reports whether another diagnostic of severity sev would be left out,
// so that a check can skip the work of describing it.
func (s *diagSink) full(sev hcl.DiagnosticSeverity) bool {
	if sev == hcl.DiagError {
		return s.errs >= maxErrors
	}
	return s.warns >= maxWarnings
}

// count is the number of diagnostics added, kept or not.
func (s *diagSink) count() int { return s.errs + s.warns }

func (s *diagSink) hasErrors() bool { return s.errs > 0 }

// absorb adds what o collected, kept or counted.
func (s *diagSink) absorb(o *diagSink) {
	s.add(o.kept...)
	if o.firstLost != nil && s.firstLost == nil {
		s.firstLost = o.firstLost
	}
	s.errs += o.lostErrs
	s.warns += o.lostWarns
	s.lostErrs += o.lostErrs
	s.lostWarns += o.lostWarns
}

// result returns the kept diagnostics and, when some were left out, one more
// that says how many.
func (s *diagSink) result() hcl.Diagnostics {
	if s.lostErrs == 0 && s.lostWarns == 0 {
		return s.kept
	}
	sev := hcl.DiagWarning
	if s.lostErrs > 0 {
		sev = hcl.DiagError
	}
	at := s.firstLost
	if at == nil && len(s.kept) > 0 {
		at = s.kept[len(s.kept)-1].Subject
	}
	return append(s.kept, &hcl.Diagnostic{
		Severity: sev,
		Extra:    LeftOut{Errors: s.lostErrs, Warnings: s.lostWarns},
		Summary:  "Too many problems",
		Detail: fmt.Sprintf("openhqm lists at most %d errors and %d warnings; %s and %s were left out, the first of them here. Fix the ones above and check again.",
			maxErrors, maxWarnings, plural(s.lostErrs, "more error"), plural(s.lostWarns, "more warning")),
		Subject: at,
	})
}

// LeftOut is the Extra of the last diagnostic when Load left some out: how
// many, so that a summary can count every problem and not just those kept.
// That diagnostic is not a problem of its own.
type LeftOut struct{ Errors, Warnings int }

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
