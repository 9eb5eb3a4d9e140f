package config

import (
	"fmt"
	"strings"

	"github.com/itchyny/gojq"
)

// jqPrelude holds the guard definitions CompileJQ puts before an
// expression, in order. A definition of a builtin's name shadows the builtin
// for the expression (gojq resolves the expression's own definitions
// first), and one written before the shadow still reaches the builtin: that
// is how "_openhqm_o_tojson" keeps gojq's tojson once tojson is guarded.
//
// Builtins gojq defines in jq (sort_by, sub, IN…) call other builtins in
// gojq's own scope, where shadows do not reach, so those are redefined here
// from gojq's builtin.jq with the guarded calls. Entries that define
// operators and assignments come last, so that the definitions above them
// (sub's accumulation, say) keep gojq's unguarded, faster operators.
var jqPrelude = []jqPreludeEntry{
	// Builtins that allocate in proportion to their input, or more, or
	// compare it: estimated, charged and bounded by jqPre before they run.
	pre0("tojson"), pre0("tostring"), pre0("_tohtml"), pre0("_touri"), pre0("_tourid"),
	pre0("_tocsv"), pre0("_totsv"), pre0("_tosh"), pre0("_tobase64"), pre0("_tobase64d"),
	pre1("format"), pre0("ascii_downcase"), pre0("ascii_upcase"), pre0("explode"), pre0("implode"),
	pre0("keys"), pre0("to_entries"), pre0("reverse"), pre0("sort"), pre0("unique"), pre0("min"), pre0("max"),
	pre0("add"), pre0("flatten"), pre1("flatten"), pre0("transpose"), pre1("join"), pre1("split"),
	pre1("contains"), pre1("inside"), pre1("indices"), pre1("index"), pre1("rindex"), pre1("bsearch"),
	pre1("delpaths"), pre0("tonumber"), pre1("strftime"), pre1("strflocaltime"), pre0("builtins"),
	{key: "fromjson/0", src: `def fromjson: _openhqm_fromjson($__openhqm);`},
	{key: "add/1", src: `def add(f): [f] | add;`, deps: []string{"add/0"}},

	// The by-key builtins compare keys computed inside them.
	byKey("sort_by", "_sort_by"), byKey("group_by", "_group_by"), byKey("unique_by", "_unique_by"),
	byKey("min_by", "_min_by"), byKey("max_by", "_max_by"),
	{key: "IN/1", src: `def IN(s): any(_openhqm_op($__openhqm; "=="; s; .) | .[0] == .[1]; .);`},
	{key: "IN/2", src: `def IN(src; s): any(_openhqm_op($__openhqm; "=="; src; s) | .[0] == .[1]; .);`},
	{key: "INDEX/2", src: `def INDEX(stream; idx_expr): reduce stream as $row ({}; .[$row | idx_expr | tostring] = $row);`,
		deps: []string{"tostring/0"}},
	{key: "INDEX/1", src: `def INDEX(idx_expr): INDEX(.[]; idx_expr);`, deps: []string{"INDEX/2"}},

	// setpath can grow an array to any index it is given.
	{key: "setpath/2", src: `def _openhqm_o_setpath($p; $v): setpath($p; $v);
def setpath(p; v): _openhqm_setpath($__openhqm; p; v) as [$p, $v] | _openhqm_o_setpath($p; $v);`},
	{key: "pick/1", src: `def pick(f): . as $v | reduce path(f) as $p (null; setpath($p; $v | getpath($p)));`,
		deps: []string{"setpath/2"}},
	{key: "fromstream/1", src: `def fromstream(f): foreach f as $pv (null;
  if .e then null end | $pv as [$p, $v] |
  if $pv | length == 2 then setpath(["v"] + $p; $v) | setpath(["e"]; $p | length == 0)
  else setpath(["e"]; $p | length == 1) end;
  if .e then .v else empty end);`, deps: []string{"setpath/2"}},

	// Regular expressions run on _openhqm_match: gojq's matcher counts rune
	// offsets from the start of the string for every match (quadratic) and
	// caches every pattern it ever sees.
	{key: "match/2", src: `def match($re; $flags): _openhqm_match($__openhqm; $re; $flags; false)[];`},
	{key: "match/1", src: `def match($re): if $re | type == "array" then match($re[0]; $re[1]) else match($re; null) end;`,
		deps: []string{"match/2"}},
	{key: "test/2", src: `def test($re; $flags): _openhqm_match($__openhqm; $re; $flags; true);`},
	{key: "test/1", src: `def test($re): if $re | type == "array" then test($re[0]; $re[1]) else test($re; null) end;`,
		deps: []string{"test/2"}},
	{key: "capture/2", src: `def capture($re; $flags): match($re; $flags) | .captures | _captures;`, deps: []string{"match/2"}},
	{key: "capture/1", src: `def capture($re): if $re | type == "array" then capture($re[0]; $re[1]) else capture($re; null) end;`,
		deps: []string{"capture/2"}},
	{key: "scan/2", src: `def scan($re; $flags): match($re; $flags + "g") |
  if .captures == [] then .string else [.captures[].string] end;`, deps: []string{"match/2"}},
	{key: "scan/1", src: `def scan($re): scan($re; null);`, deps: []string{"scan/2"}},
	{key: "splits/2", src: `def splits($re; $flags): .[foreach (match($re; $flags + "g"), null) as {$offset, $length}
  (null; {start: .next, end: $offset, next: $offset + $length})];`, deps: []string{"match/2"}},
	{key: "splits/1", src: `def splits($re): splits($re; null);`, deps: []string{"splits/2"}},
	{key: "split/2", src: `def split($re; $flags): [splits($re; $flags)];`, deps: []string{"splits/2"}},
	{key: "sub/3", src: `def sub($re; str; $flags): reduce match($re; $flags) as {$offset, $length, $captures}
  ({s: ., r: []}; reduce ($captures | _captures | str) as $s
    (.i = 0; .r[.i] += .s[.next:$offset] + $s | .i += 1) | .next = $offset + $length) |
  .r[] + .s[.next:] // .s;`, deps: []string{"match/2"}},
	{key: "sub/2", src: `def sub($re; str): sub($re; str; null);`, deps: []string{"sub/3"}},
	{key: "gsub/3", src: `def gsub($re; str; $flags): sub($re; str; $flags + "g");`, deps: []string{"sub/3"}},
	{key: "gsub/2", src: `def gsub($re; str): sub($re; str; "g");`, deps: []string{"sub/3"}},

	// Assignments: a path may grow an array to its index.
	{key: "_assign/2", src: `def _openhqm_o_assign(p; $v): _assign(p; $v);
def _assign(p; $v): reduce path(p) as $q (.; _openhqm_grow($__openhqm; $q)) | _openhqm_o_assign(p; $v);`},
	{key: "_modify/2", src: `def _openhqm_o_modify(p; f): _modify(p; f);
def _modify(p; f): reduce path(p) as $q (.; _openhqm_grow($__openhqm; $q)) | _openhqm_o_modify(p; f);`},

	// Operators, which the rewrite turns into calls of these names.
	op("_add", "+"), op("_subtract", "-"), op("_multiply", "*"), op("_divide", "/"),
	op("_equal", "=="), op("_notequal", "!="), op("_greater", ">"), op("_less", "<"),
	op("_greatereq", ">="), op("_lesseq", "<="),
}

// jqPreludeEntry defines key ("name/arity") in src, which may rely on the
// entries named in deps (which come earlier).
type jqPreludeEntry struct {
	key  string
	src  string
	deps []string
}

// pre0 guards a builtin of no argument: jqPre looks at the input, charges
// and checks, and returns it to the original.
func pre0(name string) jqPreludeEntry {
	o := "_openhqm_o_" + name
	return jqPreludeEntry{key: name + "/0", src: fmt.Sprintf(
		`def %[2]s: %[1]s; def %[1]s: _openhqm_pre($__openhqm; %[1]q) | %[2]s;`, name, o)}
}

// pre1 guards a builtin of one argument, which gojq evaluates to a value
// first just as the $a parameter does.
func pre1(name string) jqPreludeEntry {
	o := "_openhqm_o_" + name
	return jqPreludeEntry{key: name + "/1", src: fmt.Sprintf(
		`def %[2]s($a): %[1]s($a); def %[1]s($a): _openhqm_pre($__openhqm; %[1]q; $a) | %[2]s($a);`, name, o)}
}

// byKey redefines f(g) = internal(map([g])) with the keys checked before
// the internal sorts or compares them.
func byKey(name, internal string) jqPreludeEntry {
	return jqPreludeEntry{key: name + "/1", src: fmt.Sprintf(
		`def %s(f): %s(_openhqm_keys($__openhqm; %q; map([f])));`, name, internal, name)}
}

// op defines the function of an operator. _openhqm_op evaluates both
// operands in gojq's order (it is a builtin call of two arguments, like the
// operator) and returns them as a pair once the operation is known to be
// affordable; the operator then runs on the pair.
func op(name, symbol string) jqPreludeEntry {
	return jqPreludeEntry{key: name + "/2", src: fmt.Sprintf(
		`def %s(l; r): _openhqm_op($__openhqm; %q; l; r) | .[0] %s .[1];`, name, symbol, symbol)}
}

var jqPreludeIndex = func() map[string]int {
	m := make(map[string]int, len(jqPrelude))
	for i, e := range jqPrelude {
		m[e.key] = i
	}
	return m
}()

// preludeFor returns the guard definitions an expression calling used
// needs, in prelude order. They are parsed for every expression because
// gojq's compiler modifies the AST it compiles.
func preludeFor(used map[string]bool) ([]*gojq.FuncDef, error) {
	need := make([]bool, len(jqPrelude))
	var add func(key string)
	add = func(key string) {
		i, ok := jqPreludeIndex[key]
		if !ok || need[i] {
			return
		}
		need[i] = true
		for _, d := range jqPrelude[i].deps {
			add(d)
		}
	}
	for key := range used {
		add(key)
	}
	var src strings.Builder
	for i, e := range jqPrelude {
		if need[i] {
			src.WriteString(e.src)
			src.WriteByte('\n')
		}
	}
	if src.Len() == 0 {
		return nil, nil
	}
	src.WriteString(".")
	q, err := gojq.Parse(src.String())
	if err != nil {
		return nil, err
	}
	return q.FuncDefs, nil
}
