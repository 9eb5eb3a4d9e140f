package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/itchyny/gojq"
)

// The guard functions the prelude and the rewrite call. Each receives the
// evaluation's JQMeter as its first argument, estimates what the guarded
// operation will allocate (an upper bound within a small factor) and how
// much work it is, and either returns so that the operation runs or returns
// an error wrapping ErrJQMemory or ErrJQWork. Estimates walk values with
// jqSize, which stops at its limit, so that a value sharing its parts
// (reduce range(60) as $i (0; [., .])) costs no more to measure than the
// limit.
func jqGuards() []gojq.CompilerOption {
	re := newJQRegexps()
	return []gojq.CompilerOption{
		gojq.WithFunction("_openhqm_pre", 2, 3, jqPre),
		gojq.WithFunction("_openhqm_op", 4, 4, jqOp),
		gojq.WithFunction("_openhqm_keys", 3, 3, jqKeys),
		gojq.WithFunction("_openhqm_setpath", 3, 3, jqSetpath),
		gojq.WithFunction("_openhqm_grow", 2, 2, jqGrow),
		gojq.WithFunction("_openhqm_key", 1, 1, jqKey),
		gojq.WithFunction("_openhqm_match", 4, 4, re.match),
		gojq.WithFunction("_openhqm_fromjson", 1, 1, jqFromJSON),
	}
}

// jqLimitError is a guard's refusal: err is ErrJQMemory or ErrJQWork.
type jqLimitError struct {
	what string
	err  error
}

func (e *jqLimitError) Error() string { return e.what + ": " + e.err.Error() }
func (e *jqLimitError) Unwrap() error { return e.err }

// jqCharge checks work against maxJQWork and charges alloc to m; nil when
// the operation may run.
func jqCharge(m JQMeter, what string, alloc, work int64) error {
	if alloc > 0 && (alloc > m.Left() || !m.Charge(alloc)) {
		return &jqLimitError{what, ErrJQMemory}
	}
	if work > maxJQWork {
		return &jqLimitError{what, ErrJQWork}
	}
	return nil
}

func meterOf(args []any) (JQMeter, error) {
	if m, ok := args[0].(JQMeter); ok {
		return m, nil
	}
	return nil, fmt.Errorf("internal error: jq evaluation without a meter (%T)", args[0])
}

// jqPre guards the builtin named by args[1] before it runs on v (with
// args[2] as its argument) and returns v.
func jqPre(v any, args []any) any {
	m, err := meterOf(args)
	if err != nil {
		return err
	}
	name, _ := args[1].(string)
	var x any
	if len(args) > 2 {
		x = args[2]
	}
	c, err := preCost(m, name, v, x)
	if err == nil {
		err = jqCharge(m, name, c.alloc, c.work)
	}
	if err != nil {
		return err
	}
	return v
}

type jqCost struct{ alloc, work int64 }

// preCost estimates a builtin call. A call the builtin will refuse anyway
// (a type error) costs nothing, so that gojq reports its own error.
func preCost(m JQMeter, name string, v, x any) (jqCost, error) {
	switch name {
	case "tojson":
		s, err := measure(m, name, v)
		return jqCost{s.text, s.heap()}, err
	case "tostring", "_tourid", "_tobase64d":
		if s, ok := v.(string); ok {
			if name == "tostring" {
				return jqCost{}, nil
			}
			return jqCost{int64(len(s)), int64(len(s))}, nil
		}
		s, err := measure(m, name, v)
		return jqCost{2 * s.text, s.heap()}, err
	case "_tohtml", "_touri", "_tocsv", "_totsv", "_tosh", "_tobase64":
		// Escaping makes a byte up to 6 (@html "&quot;"), 3 (@uri) or 4
		// (@sh "'\''") bytes; base64 makes 3 into 4 after tostring.
		n := int64(0)
		if s, ok := v.(string); ok {
			n = int64(len(s)) + 2
		} else {
			s, err := measure(m, name, v)
			if err != nil {
				return jqCost{}, err
			}
			n = s.text
		}
		return jqCost{satMul(n, 7), satMul(n, 2)}, nil
	case "format":
		f, _ := x.(string)
		fn := formatFunc("@" + f)
		if fn.Name == "format" {
			return jqCost{}, nil // unknown format: gojq's error
		}
		return preCost(m, fn.Name, v, nil)
	case "ascii_downcase", "ascii_upcase":
		// strings.Map writes an invalid byte as U+FFFD, 3 bytes.
		s, _ := v.(string)
		return jqCost{3 * int64(len(s)), int64(len(s))}, nil
	case "explode":
		// One any per rune, and code points above 255 are boxed.
		s, _ := v.(string)
		return jqCost{24 * int64(len(s)), int64(len(s))}, nil
	case "implode":
		a, _ := v.([]any)
		return jqCost{4 * int64(len(a)), int64(len(a))}, nil
	case "keys", "reverse":
		n := int64(containerLen(v))
		return jqCost{32 * n, n}, nil
	case "to_entries":
		n := int64(containerLen(v))
		return jqCost{256 * n, n}, nil
	case "sort", "unique":
		a, _ := v.([]any)
		w, err := workOf(name, v)
		return jqCost{64 * int64(len(a)), sortWork(w, len(a))}, err
	case "min", "max":
		w, err := workOf(name, v)
		return jqCost{0, w}, err
	case "add":
		n := shallowSum(v, nil)
		return jqCost{n, n}, nil
	case "join":
		sep, _ := x.(string)
		n := shallowSum(v, &sep)
		return jqCost{n, n}, nil
	case "flatten":
		depth := -1.0
		if x != nil {
			d, ok := gojq.ToFloat64(x)
			if !ok || d < 0 {
				return jqCost{}, nil
			}
			depth = d
		}
		c := &leafCounter{limit: min(m.Left(), maxJQWork) / 16}
		c.count(v, depth, 0)
		if c.over {
			return jqCost{}, &jqLimitError{name, ErrJQMemory}
		}
		return jqCost{16 * c.leaves, 16 * c.nodes}, nil
	case "transpose":
		rows, _ := v.([]any)
		width := 0
		for _, r := range rows {
			width = max(width, containerLen(r))
		}
		n := satMul(int64(len(rows)), int64(width))
		return jqCost{satMul(n, 16), n}, nil
	case "split":
		return splitCost(v, x), nil
	case "contains", "inside":
		a, b := v, x
		if name == "inside" {
			a, b = x, v
		}
		sa, oka := a.(string)
		sb, okb := b.(string)
		if oka && okb {
			return jqCost{0, int64(len(sa) + len(sb))}, nil
		}
		// Each element of an array in b is looked for among the elements
		// of the array of a at the same place.
		size := &jqSize{limit: maxJQWork}
		if size.add(a, 0); size.over {
			return jqCost{}, &jqLimitError{name, ErrJQWork}
		}
		wb, err := workOf(name, b)
		return jqCost{0, satMul(wb, max(1, size.maxLen))}, err
	case "indices", "index", "rindex":
		switch v := v.(type) {
		case string:
			s, ok := x.(string)
			if !ok {
				return jqCost{}, nil
			}
			// gojq explodes both strings and compares at every position.
			return jqCost{40*int64(len(v)) + 24*int64(len(s)), satMul(int64(len(v)), int64(len(s))+1)}, nil
		case []any:
			w, err := workOf(name, x)
			return jqCost{16 * int64(len(v)), satMul(int64(len(v)), w)}, err
		}
		return jqCost{}, nil
	case "bsearch":
		a, _ := v.([]any)
		w, err := workOf(name, x)
		return jqCost{0, satMul(w, log2(len(a)))}, err
	case "delpaths":
		ps, _ := x.([]any)
		for _, p := range ps {
			if containerLen(p) > maxJQDepth {
				return jqCost{}, &jqLimitError{name, ErrJQWork}
			}
		}
		w, err := workOf(name, x)
		return jqCost{16 * int64(len(ps)), satMul(w, log2(len(ps)))}, err
	case "tonumber":
		if s, ok := v.(string); ok && len(s) > MaxJQNumberLen {
			return jqCost{}, &jqLimitError{name, fmt.Errorf("%w (a number of more than %d characters)", ErrJQWork, MaxJQNumberLen)}
		}
		return jqCost{}, nil
	case "strftime", "strflocaltime":
		f, _ := x.(string)
		return jqCost{32 * int64(len(f)), int64(len(f))}, nil
	case "builtins":
		return jqCost{16 << 10, 0}, nil
	}
	return jqCost{}, fmt.Errorf("internal error: no guard for %s", name)
}

// jqOp guards the binary operator args[1] on the operands args[2] and
// args[3] and returns them as a pair.
func jqOp(_ any, args []any) any {
	m, err := meterOf(args)
	if err != nil {
		return err
	}
	op, _ := args[1].(string)
	l, r := args[2], args[3]
	c, err := opCost(m, op, l, r)
	if err == nil {
		err = jqCharge(m, op, c.alloc, c.work)
	}
	if err != nil {
		return err
	}
	return []any{l, r}
}

// maxJQIntBits bounds an integer an operator may produce: gojq computes
// integers exactly, and repeated squaring doubles their size every step.
const maxJQIntBits = 1 << 16

func opCost(m JQMeter, op string, l, r any) (jqCost, error) {
	switch op {
	case "+", "-", "*":
		// Machine integers cost nothing; gojq turns an overflow into a
		// big integer of at most 128 bits, which is checked when it grows.
		if lb, rb := intBits(l), intBits(r); lb > 0 && rb > 0 && max(lb, rb) > 64 {
			n := max(lb, rb) + 1
			if op == "*" {
				n = lb + rb
			}
			if n > maxJQIntBits {
				return jqCost{}, &jqLimitError{op, fmt.Errorf("%w (an integer of more than %d bits)", ErrJQMemory, maxJQIntBits)}
			}
			return jqCost{n / 8, n / 8}, nil
		}
	}
	switch op {
	case "+":
		switch l := l.(type) {
		case string:
			if r, ok := r.(string); ok {
				n := int64(len(l) + len(r))
				return jqCost{n, n}, nil
			}
		case []any:
			if r, ok := r.([]any); ok {
				n := int64(len(l) + len(r))
				return jqCost{16 * n, n}, nil
			}
		case map[string]any:
			if r, ok := r.(map[string]any); ok {
				n := int64(len(l) + len(r))
				return jqCost{64 * n, n}, nil
			}
		}
	case "-":
		if l, ok := l.([]any); ok {
			if _, ok := r.([]any); ok {
				w, err := workOf(op, r)
				return jqCost{16 * int64(len(l)), satMul(int64(len(l)), w)}, err
			}
		}
	case "*":
		s, isString := l.(string)
		n, isNumber := gojq.ToFloat64(r)
		if !isString {
			s, isString = r.(string)
			n, isNumber = gojq.ToFloat64(l)
		}
		if isString && isNumber {
			if !(n >= 1) || len(s) == 0 { // NaN, zero and negative repeat nothing
				return jqCost{}, nil
			}
			c := satMul(int64(len(s)), int64(min(n, math.MaxInt32)))
			return jqCost{c, c}, nil
		}
		lm, lok := l.(map[string]any)
		rm, rok := r.(map[string]any)
		if lok && rok {
			// The deep merge copies every object the two share a path to.
			sl, err := measure(m, op, lm)
			if err != nil {
				return jqCost{}, err
			}
			sr, err := measure(m, op, rm)
			if err != nil {
				return jqCost{}, err
			}
			return jqCost{4 * (sl.heap() + sr.heap()), sl.heap() + sr.heap()}, nil
		}
	case "/":
		return splitCost(l, r), nil
	default: // comparisons
		if !isContainer(l) || !isContainer(r) {
			return jqCost{}, nil
		}
		wl, err := workOf(op, l)
		if err != nil {
			return jqCost{}, err
		}
		wr, err := workOf(op, r)
		return jqCost{0, (wl + wr) / 2}, err
	}
	return jqCost{}, nil
}

// jqKeys guards a by-key builtin (sort_by…) on the array v before it sorts
// or compares the keys args[2], which it returns.
func jqKeys(v any, args []any) any {
	m, err := meterOf(args)
	if err != nil {
		return err
	}
	name, _ := args[1].(string)
	keys := args[2]
	n := containerLen(v)
	w, err := workOf(name, keys)
	if err == nil {
		if name != "min_by" && name != "max_by" {
			w = sortWork(w, n)
		}
		err = jqCharge(m, name, 64*int64(n), w)
	}
	if err != nil {
		return err
	}
	return keys
}

// jqSetpath guards setpath(p; v) on the input and returns [p, v].
func jqSetpath(v any, args []any) any {
	m, err := meterOf(args)
	if err != nil {
		return err
	}
	n, err := pathGrowth(v, args[1])
	if err == nil {
		err = jqCharge(m, "setpath", n, 0)
	}
	if err != nil {
		return err
	}
	return []any{args[1], args[2]}
}

// jqGrow guards an assignment to the path args[1] of v and returns v.
func jqGrow(v any, args []any) any {
	m, err := meterOf(args)
	if err != nil {
		return err
	}
	n, err := pathGrowth(v, args[1])
	if err == nil {
		err = jqCharge(m, "assignment", n, 0)
	}
	if err != nil {
		return err
	}
	return v
}

// pathGrowth returns the bytes setting path p in v allocates for new array
// elements and object keys; gojq fills an array with nulls up to the index.
func pathGrowth(v, p any) (int64, error) {
	path, ok := p.([]any)
	if !ok {
		return 0, nil
	}
	if len(path) > maxJQDepth {
		return 0, &jqLimitError{"path", fmt.Errorf("%w (a path of more than %d elements)", ErrJQWork, maxJQDepth)}
	}
	var n int64
	cur := v
	for _, c := range path {
		switch c := c.(type) {
		case string:
			if o, ok := cur.(map[string]any); ok {
				if x, ok := o[c]; ok {
					cur = x
					continue
				}
			} else if cur != nil {
				return n, nil // gojq's error
			}
			n += 64
			cur = nil
		case map[string]any: // a slice: it replaces elements and ends the path
			return n, nil
		default:
			f, ok := gojq.ToFloat64(c)
			if !ok {
				return n, nil
			}
			a, isArray := cur.([]any)
			if !isArray && cur != nil {
				return n, nil
			}
			i := math.Floor(f)
			if i < 0 {
				i += float64(len(a))
				if i < 0 {
					return n, nil
				}
			}
			if i >= float64(len(a)) {
				n = satAdd(n, satMul(16, int64(min(i, math.MaxInt64/32))+1-int64(len(a))))
				cur = nil
				continue
			}
			cur = a[int(i)]
		}
	}
	return n, nil
}

// jqKey checks a computed key of .[k]: an array key makes gojq look for it
// at every position of the indexed array, so it may hold at most 4 scalars.
func jqKey(v any, _ []any) any {
	a, ok := v.([]any)
	if !ok {
		return v
	}
	if len(a) > 4 {
		return &jqLimitError{"index", fmt.Errorf("%w (an array index of more than 4 elements)", ErrJQWork)}
	}
	for _, e := range a {
		if s, ok := e.(string); isContainer(e) || ok && len(s) > 256 {
			return &jqLimitError{"index", fmt.Errorf("%w (an array index holding a container or a long string)", ErrJQWork)}
		}
	}
	return v
}

// jqFromJSON is gojq's fromjson, charged, with numbers bounded like the
// request body's.
func jqFromJSON(v any, args []any) any {
	m, err := meterOf(args)
	if err != nil {
		return err
	}
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("fromjson cannot be applied to: %s", gojq.Preview(v))
	}
	if err := jqCharge(m, "fromjson", 24*int64(len(s)), int64(len(s))); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var w any
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("fromjson cannot be applied to %s: %w", gojq.Preview(v), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("fromjson cannot be applied to: %s", gojq.Preview(v))
	}
	if err := CheckJQNumbers(w); err != nil {
		return &jqLimitError{"fromjson", err}
	}
	return w
}

// CheckJQNumbers returns an error wrapping ErrJQWork when v, a decoded JSON
// value, holds a json.Number longer than MaxJQNumberLen: gojq would parse it
// in quadratic time each time it is used.
func CheckJQNumbers(v any) error {
	switch v := v.(type) {
	case json.Number:
		if len(v) > MaxJQNumberLen {
			return fmt.Errorf("%w (a number of more than %d characters)", ErrJQWork, MaxJQNumberLen)
		}
	case []any:
		for _, e := range v {
			if err := CheckJQNumbers(e); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, e := range v {
			if err := CheckJQNumbers(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// JQTextSize returns an upper bound of the length of v's JSON text as
// gojq.Marshal writes it. The error wraps ErrJQMemory when that exceeds
// limit and ErrJQWork when v nests deeper than encoding/json decodes
// (Marshal recurses once per level). Its cost is bounded by limit whatever v
// is, even a value that shares its parts.
func JQTextSize(v any, limit int64) (int64, error) {
	s := &jqSize{limit: math.MaxInt64, textLimit: max(limit, 1)}
	s.add(v, 0)
	switch {
	case s.deep:
		return 0, fmt.Errorf("%w (a value nested more than %d levels)", ErrJQWork, maxJQDepth)
	case s.over || s.text > limit:
		return 0, fmt.Errorf("%w (a value of more than %d bytes)", ErrJQMemory, limit)
	}
	return s.text, nil
}

// jqSize measures a value: nodes (values and object keys) and the length of
// its JSON text. heap, 16 bytes a node plus the text, approximates the
// memory of the value or of a copy. It stops once heap exceeds limit.
type jqSize struct {
	limit       int64 // of heap()
	textLimit   int64 // of text, when not 0; every node has some text
	nodes, text int64
	maxLen      int64 // of the arrays visited
	over, deep  bool
}

func (s *jqSize) heap() int64 { return 16*s.nodes + s.text }

func (s *jqSize) add(v any, depth int) {
	if depth > maxJQDepth {
		s.over, s.deep = true, true
		return
	}
	s.nodes++
	switch v := v.(type) {
	case nil:
		s.text += 4
	case bool:
		s.text += 5
	case int:
		s.text += digits(int64(v))
	case float64:
		s.text += floatLen(v)
	case *big.Int:
		s.text += int64(v.BitLen())/3 + 2
	case json.Number:
		s.text += int64(len(v))
	case string:
		s.text += quotedLen(v)
	case []any:
		s.text += 2 + int64(len(v)) // brackets and commas, one too many
		s.maxLen = max(s.maxLen, int64(len(v)))
		for _, e := range v {
			if s.add(e, depth+1); s.over {
				return
			}
		}
	case map[string]any:
		s.text += 2 + int64(len(v))
		for k, e := range v {
			s.nodes++
			s.text += quotedLen(k) + 1
			if s.add(e, depth+1); s.over {
				return
			}
		}
	}
	if s.heap() > s.limit || s.textLimit > 0 && s.text > s.textLimit {
		s.over = true
	}
}

// measure sizes v for an allocation, up to what m still allows.
func measure(m JQMeter, what string, v any) (*jqSize, error) {
	s := &jqSize{limit: min(max(m.Left(), 0), maxJQWork)}
	s.add(v, 0)
	if s.over {
		if s.deep || s.heap() > maxJQWork {
			return s, &jqLimitError{what, ErrJQWork}
		}
		return s, &jqLimitError{what, ErrJQMemory}
	}
	return s, nil
}

// workOf returns the size of v as the work of visiting or comparing it.
func workOf(what string, v any) (int64, error) {
	s := &jqSize{limit: maxJQWork}
	s.add(v, 0)
	if s.over {
		return 0, &jqLimitError{what, ErrJQWork}
	}
	return s.heap(), nil
}

// floatLen is the length of f as gojq's encoder writes it.
func floatLen(f float64) int64 {
	if math.IsNaN(f) {
		return 4
	}
	f = min(max(f, -math.MaxFloat64), math.MaxFloat64)
	format := byte('f')
	if x := math.Abs(f); x != 0 && x < 1e-6 || x >= 1e21 {
		format = 'e'
	}
	var buf [32]byte
	return int64(len(strconv.AppendFloat(buf[:0], f, format, -1, 64)))
}

// digits is the length of n in decimal.
func digits(n int64) int64 {
	l := int64(1)
	if n < 0 {
		l, n = 2, -n // math.MinInt64 stays negative and counts 2
	}
	for ; n >= 10; n /= 10 {
		l++
	}
	return l
}

// quotedLen is the length of s as gojq's encoder writes it.
func quotedLen(s string) int64 {
	n := int64(len(s)) + 2
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\':
				n++
			case b < ' ' || b > '~':
				n += 5
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			n += 5 // written as \ufffd
		}
		i += size
	}
	return n
}

// leafCounter counts what flatten(depth) copies.
type leafCounter struct {
	limit, leaves, nodes int64
	over                 bool
}

func (c *leafCounter) count(v any, depth float64, level int) {
	if _, isObject := v.(map[string]any); isObject && level > 0 || !isContainer(v) {
		c.leaves++
		return
	}
	for _, e := range values(v) {
		if c.nodes++; c.nodes > c.limit || c.leaves > c.limit || level > maxJQDepth {
			c.over = true
			return
		}
		if _, isArray := e.([]any); isArray && (depth < 0 || float64(level) < depth) {
			c.count(e, depth, level+1)
		} else {
			c.leaves++
		}
		if c.over {
			return
		}
	}
}

// shallowSum estimates add (sep nil) or join(sep): the lengths of the
// strings and arrays it concatenates, each as often as it appears.
func shallowSum(v any, sep *string) int64 {
	var n int64
	for _, e := range values(v) {
		switch e := e.(type) {
		case string:
			n = satAdd(n, int64(len(e)))
		case []any:
			n = satAdd(n, 16*int64(len(e)))
		case map[string]any:
			n = satAdd(n, 64*int64(len(e)))
		case *big.Int:
			n = satAdd(n, int64(e.BitLen()/8))
		case int, float64, json.Number, bool:
			if sep != nil { // join writes it as text
				n = satAdd(n, 24)
			}
		}
		if sep != nil {
			n = satAdd(n, int64(len(*sep)))
		}
	}
	return n
}

// splitCost estimates split($sep) and string / string: one string header
// (the pieces share the input) and one slice element per piece.
func splitCost(v, x any) jqCost {
	s, ok1 := v.(string)
	sep, ok2 := x.(string)
	if !ok1 || !ok2 {
		return jqCost{}
	}
	pieces := int64(utf8.RuneCountInString(s))
	if sep != "" {
		pieces = int64(strings.Count(s, sep)) + 1
	}
	return jqCost{32 * pieces, int64(len(s))}
}

func intBits(v any) int64 {
	switch v := v.(type) {
	case int:
		return 64
	case *big.Int:
		return int64(v.BitLen())
	case json.Number:
		// Only integers stay exact; a json.Number with a fraction or an
		// exponent becomes a float.
		for _, c := range v {
			if c == '.' || c == 'e' || c == 'E' {
				return 0
			}
		}
		return int64(len(v))*10/3 + 1
	}
	return 0
}

// values iterates the elements of an array or the values of an object.
func values(v any) iter.Seq2[int, any] {
	return func(yield func(int, any) bool) {
		switch v := v.(type) {
		case []any:
			for i, e := range v {
				if !yield(i, e) {
					return
				}
			}
		case map[string]any:
			i := 0
			for _, e := range v {
				if !yield(i, e) {
					return
				}
				i++
			}
		}
	}
}

func isContainer(v any) bool {
	switch v.(type) {
	case []any, map[string]any:
		return true
	}
	return false
}

func containerLen(v any) int {
	switch v := v.(type) {
	case []any:
		return len(v)
	case map[string]any:
		return len(v)
	}
	return 0
}

func log2(n int) int64 { return int64(bits.Len(uint(n))) + 1 }

// sortWork is the work of sorting n elements of total size w: each takes
// part in about log2(n) comparisons, which stop at the first difference.
func sortWork(w int64, n int) int64 { return satMul(w, log2(n)) / 8 }

func satMul(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
