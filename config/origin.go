package config

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/zclconf/go-cty/cty"
)

// Values read by env() and file() are secrets (tokens, passwords, URLs with
// credentials) or may be anything at all (file("/proc/self/environ")), and
// diagnostics end up in CI logs and pull-request annotations. So such a
// value is never quoted in a diagnostic: env() and file() mark what they
// return with where it came from (a cty mark, which survives templates,
// function calls and collections), the decoder records the marks of each
// attribute, and wherever a diagnostic would quote a value of a marked
// attribute it names the origin instead, such as `the value of env("X")`.
// The source snippets of diagnostics show the expression, `env("X")`, which
// is fine.

// origin marks a value with the env() or file() call that produced it, such
// as `env("TOKEN")`.
type origin string

// describeOrigins renders the marks of a value for a diagnostic, or "" when
// none is an origin.
func describeOrigins(marks cty.ValueMarks) string {
	var calls []string
	for m := range marks {
		if o, ok := m.(origin); ok {
			calls = append(calls, string(o))
		}
	}
	switch len(calls) {
	case 0:
		return ""
	case 1:
		if strings.HasPrefix(calls[0], "file(") {
			return "the content of " + calls[0]
		}
		return "the value of " + calls[0]
	}
	slices.Sort(calls)
	calls = slices.Compact(calls)
	if len(calls) > 3 {
		calls = append(calls[:3], "more")
	}
	return "a value built from " + strings.Join(calls, ", ")
}

// valueError is a problem with a value, worded twice: quoting the value, for
// a value written in the configuration, and as a phrase that follows a
// description of the value, without quoting any of it, for a value that came
// from env() or file().
type valueError struct {
	quoted     string // `"abc" is not a duration; write ...`
	quotedTail string // what follows the quoted value in quoted
	plain      string // `is not a duration; write ...`
}

func (e *valueError) Error() string { return e.quoted }

// newValueError words a problem with s: plain follows the quoted value, and
// quotedTail, when set, replaces plain after it (to quote more of the value,
// such as the port of an address).
func newValueError(s, plain, quotedTail string) error {
	if quotedTail == "" {
		quotedTail = plain
	}
	return &valueError{quoted: strconv.Quote(s) + " " + quotedTail, quotedTail: quotedTail, plain: plain}
}

// originOf is the description of where attribute name's value came from, or
// "" for a value written in the configuration.
func (m *rawMeta) originOf(name string) string {
	if a := m.attr(name); a != nil {
		return a.origin
	}
	return ""
}

// quote renders v, the value of attribute name (or a part of it), for a
// diagnostic.
func (m *rawMeta) quote(name, v string) string {
	if o := m.originOf(name); o != "" {
		return o
	}
	return strconv.Quote(v)
}

// quotePart renders an element or key of attribute name's value.
func (m *rawMeta) quotePart(name, v string) string {
	if o := m.originOf(name); o != "" {
		return "an entry of " + o
	}
	return strconv.Quote(v)
}

// show renders a value of attribute name that is not a string (a number, a
// duration), unquoted.
func (m *rawMeta) show(name string, v any) string {
	if o := m.originOf(name); o != "" {
		return o
	}
	return fmt.Sprint(v)
}

// explain renders err, a problem with the value of attribute name.
func (m *rawMeta) explain(name string, err error) string {
	o := m.originOf(name)
	if o == "" {
		return err.Error()
	}
	var ve *valueError
	if errors.As(err, &ve) {
		return o + " " + ve.plain
	}
	return o + " is not valid"
}

// tail renders err after a phrase that names the attribute, such as "The
// endpoint url": what err says after the quoted value, or, for a value from
// env() or file(), its origin in parentheses and the plain wording.
func (m *rawMeta) tail(name string, err error) string {
	var ve *valueError
	if !errors.As(err, &ve) {
		return m.explain(name, err)
	}
	if o := m.originOf(name); o != "" {
		return "(" + o + ") " + ve.plain
	}
	return ve.quotedTail
}

// named renders a name or path that is the value of attribute attr, to
// follow a noun: `"x"`, or `named by the value of env("X")`.
func named(m *rawMeta, attr, v string) string {
	if o := m.originOf(attr); o != "" {
		return "named by " + o
	}
	return strconv.Quote(v)
}
