package config

import (
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/itchyny/gojq"
)

// jqRegexps runs match and test for one compiled expression. It follows
// gojq's matcher (flags g, i and m; jq's reporting of an empty match right
// after a non-empty one) with three differences that bound it: offsets are
// counted once per match, not from the start of the string; the number of
// matches is charged to the meter before their objects are built; and the
// cache of compiled patterns, which a pattern taken from request bodies
// would otherwise grow forever, keeps only small patterns and at most
// maxJQRegexps of them. It is safe for concurrent use.
type jqRegexps struct {
	mu    sync.Mutex
	cache map[[2]string]*jqRegexp
}

const (
	maxJQRegexps = 16
	// maxCachedRegexpSize bounds, in instructions, the patterns kept.
	maxCachedRegexpSize = 1000
	// jqMatchBytes approximates a match object of gojq's shape, plus one
	// per capture group.
	jqMatchBytes   = 400
	jqCaptureBytes = 300
)

type jqRegexp struct {
	re    *regexp.Regexp
	probe *regexp.Regexp // one character, then the pattern, anchored
	size  int64          // instructions, about
}

func newJQRegexps() *jqRegexps {
	return &jqRegexps{cache: map[[2]string]*jqRegexp{}}
}

func (c *jqRegexps) compile(m JQMeter, re, flags string) (*jqRegexp, error) {
	key := [2]string{re, flags}
	c.mu.Lock()
	r := c.cache[key]
	c.mu.Unlock()
	if r != nil {
		return r, nil
	}
	if strings.ContainsFunc(flags, func(r rune) bool { return r != 'g' && r != 'i' && r != 'm' }) {
		return nil, fmt.Errorf("unsupported regular expression flag: %q", flags)
	}
	if strings.ContainsRune(flags, 'i') {
		re = "(?i)" + re
	}
	if strings.ContainsRune(flags, 'm') {
		re = "(?s)" + re
	}
	// Counted repetitions multiply a pattern's program; it is sized from
	// the parse tree before it is compiled (twice, with the probe).
	tree, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %s", re, err)
	}
	size := regexpSize(tree)
	if err := jqCharge(m, "regular expression", satMul(size, 2*48), size); err != nil {
		return nil, err
	}
	r = &jqRegexp{size: size}
	if r.re, err = regexp.Compile(re); err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %s", re, err)
	}
	if p, err := regexp.Compile(`\A(?s:.)(?:` + re + `)`); err == nil {
		r.probe = p
	}
	if size <= maxCachedRegexpSize {
		c.mu.Lock()
		if len(c.cache) >= maxJQRegexps {
			clear(c.cache)
		}
		c.cache[key] = r
		c.mu.Unlock()
	}
	return r, nil
}

// regexpSize estimates the instructions of a compiled pattern.
func regexpSize(r *syntax.Regexp) int64 {
	n := int64(len(r.Rune)) + 1
	for _, s := range r.Sub {
		n = satAdd(n, regexpSize(s))
	}
	if r.Op == syntax.OpRepeat {
		times := r.Max
		if times < 0 {
			times = r.Min + 1
		}
		n = satMul(n, int64(max(times, 1)))
	}
	return n
}

// match is _openhqm_match(meter; re; flags; test), gojq's _match.
func (c *jqRegexps) match(v any, args []any) any {
	m, err := meterOf(args)
	if err != nil {
		return err
	}
	name := "match"
	test := args[3] == true
	if test {
		name = "test"
	}
	var flags string
	if args[2] != nil {
		var ok bool
		if flags, ok = args[2].(string); !ok {
			return fmt.Errorf("%s cannot be applied to: %s, %s", name, gojq.Preview(v), gojq.Preview(args[2]))
		}
	}
	s, ok := v.(string)
	restr, ok2 := args[1].(string)
	if !ok || !ok2 {
		return fmt.Errorf("%s cannot be applied to: %s, %s", name, gojq.Preview(v), gojq.Preview(args[1]))
	}
	r, err := c.compile(m, restr, flags)
	if err != nil {
		return err
	}
	// A step of Go's matcher runs every instruction on one byte at most.
	if err := jqCharge(m, name, 0, satMul(int64(len(s))+1, r.size)/16); err != nil {
		return err
	}
	if test {
		return r.re.MatchString(s)
	}
	groups := int64(r.re.NumSubexp())
	per := jqMatchBytes + groups*jqCaptureBytes
	limit := 1
	if strings.ContainsRune(flags, 'g') {
		limit = int(min(max(m.Left(), 0)/per, math.MaxInt32-1)) + 1
	}
	xs := r.findAll(s, limit)
	if err := jqCharge(m, name, satMul(int64(len(xs)), per), 0); err != nil {
		return err
	}
	res, names := make([]any, len(xs)), r.re.SubexpNames()
	runes := runeCounter{s: s}
	for i, x := range xs {
		start := runes.at(x[0])
		captures := make([]any, (len(x)-2)/2)
		for j := 1; j < len(x)/2; j++ {
			var name any
			if n := names[j]; n != "" {
				name = n
			}
			if x[j*2] < 0 {
				captures[j-1] = map[string]any{"name": name, "offset": -1, "length": 0, "string": nil}
				continue
			}
			off := start + runes.between(x[0], x[j*2])
			captures[j-1] = map[string]any{
				"name":   name,
				"offset": off,
				"length": runes.between(x[j*2], x[j*2+1]),
				"string": s[x[j*2]:x[j*2+1]],
			}
		}
		res[i] = map[string]any{
			"offset":   start,
			"length":   runes.between(x[0], x[1]),
			"string":   s[x[0]:x[1]],
			"captures": captures,
		}
	}
	return res
}

// findAll is gojq's regexpMatcher.FindAllStringSubmatchIndex: Go ignores an
// empty match right after a non-empty one, jq reports it.
func (r *jqRegexp) findAll(s string, n int) [][]int {
	xs := r.re.FindAllStringSubmatchIndex(s, n)
	if len(xs) == 0 || n == 1 || r.probe == nil {
		return xs
	}
	ys := make([][]int, 0, len(xs))
	for i, x := range xs {
		ys = append(ys, x)
		if x[0] == x[1] || i+1 < len(xs) && xs[i+1][0] == x[1] {
			continue
		}
		if y := r.emptyMatchAt(s, x[1]); y != nil {
			ys = append(ys, y)
		}
	}
	return ys
}

func (r *jqRegexp) emptyMatchAt(s string, offset int) []int {
	_, w := utf8.DecodeLastRuneInString(s[:offset])
	x := r.probe.FindStringSubmatchIndex(s[offset-w:])
	if x == nil || x[1] != w {
		return nil
	}
	y := make([]int, len(x))
	y[0], y[1] = offset, offset
	for i := 2; i < len(x); i++ {
		if x[i] < 0 {
			y[i] = -1
		} else {
			y[i] = x[i] + offset - w
		}
	}
	return y
}

// runeCounter converts byte offsets of s to rune offsets. at must be called
// with non-decreasing offsets (match starts) and costs what it advances.
type runeCounter struct {
	s           string
	byte, runes int
}

func (c *runeCounter) at(b int) int {
	if b < c.byte {
		return c.runes - c.between(b, c.byte)
	}
	c.runes += c.between(c.byte, b)
	c.byte = b
	return c.runes
}

// between counts the runes of s[a:b], negative when b < a.
func (c *runeCounter) between(a, b int) int {
	if b < a {
		return -utf8.RuneCountInString(c.s[b:a])
	}
	return utf8.RuneCountInString(c.s[a:b])
}
