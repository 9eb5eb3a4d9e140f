package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/itchyny/gojq"
)

// testMeter allows left bytes.
type testMeter struct{ left int64 }

func (m *testMeter) Charge(n int64) bool {
	if n > m.left {
		return false
	}
	m.left -= n
	return true
}

func (m *testMeter) Left() int64 { return m.left }

// results runs it to the end; an error ends the results.
func results(it gojq.Iter) (out []any, err error) {
	for {
		v, ok := it.Next()
		if !ok {
			return out, nil
		}
		if e, isErr := v.(error); isErr {
			return out, e
		}
		out = append(out, v)
	}
}

// jqEquivalent lists expressions whose results, guarded, must be gojq's:
// the rewrite of operators, interpolations, formats, assignments and the
// shadowed builtins must not change what an expression computes, including
// the order of results when arguments generate several values.
var jqEquivalent = []struct{ expr, input string }{
	{`.a + .b, .a - .b, .a * .b, .a / .b, .a % .b`, `{"a": 7, "b": 2}`},
	{`[(1,2) + (10,20)], [(1,2) * (10,20)], [(1,2) == (1,2)]`, `null`},
	{`.s + "!", .s * 3, "ab" * 0, "ab" * 0.5, "ab" * -1, .s * 2.7, .s / ","`, `{"s": "a,b"}`},
	{`.a + .b, .o * .p, .o + .p, [.a[] | . * 2]`, `{"a": [1,2], "b": [3], "o": {"x": {"y": 1}}, "p": {"x": {"z": 2}}}`},
	{`.a == .b, .a != .b, .a < .b, .a <= .b, .a > .b, .a >= .b, . == ., .a == [1,2]`, `{"a": [1,2], "b": [1,3]}`},
	{`.amount > 100, .tenant == "acme", .n + 1, 1 - .n, .n / 2`, `{"amount": 150, "tenant": "acme", "n": 4}`},
	{`123456789012345678901234567890 * 98765432109876543210, .big * .big, .big + 1`, `{"big": 123456789012345678901234567890}`},
	{`"a\(1,2)b\(3,4)", [.x, .y] | "\(.[])-\(.[])"`, `{"x": 1, "y": "two"}`},
	{`"a\(.x)b\(.y)c", "\(.x)", "\("in\(.y)")", @base64 "x\(.y)", @json "v=\(.)", @html "<\(.s)>"`, `{"x": 1, "y": "two", "s": "<&>"}`},
	{`@text, @json, @html, @uri, @csv, @tsv, @sh, @base64, (@base64 | @base64d)`, `["a b", "c\"d", 1, null, true]`},
	{`format("json"), format("csv"), format("base64")`, `["x", 1]`},
	{`{"k\(.a)": 1, (.b): 2}, ."\(.b)", .["\(.b)"]`, `{"a": 1, "b": "c", "c": 3}`},
	{`. as {"\(.k)": $v} | $v`, `{"k": "z", "z": 9}`},
	{`tojson, tostring, (tojson | fromjson), ("[1,2]" | fromjson), ascii_downcase?, (.s | ascii_upcase)`, `{"s": "MiXed"}`},
	{`(.s | explode), (.s | explode | implode), keys, to_entries, (.a | reverse), (.a | sort), (.a | unique), (.a | min), (.a | max)`, `{"s": "héllo", "a": [3, 1, 2, 1]}`},
	{`(.a | add), (.s | add), add(.a[]), (.n | flatten), (.n | flatten(1)), (.m | transpose), (.s | join("-")), (.a | join(","))`,
		`{"a": [1, 2], "s": ["x", "y"], "n": [1, [2, [3]]], "m": [[1, 2], [3]]}`},
	{`(.s | split(",")), (.s | contains("b")), ([1,[2]] | contains([[2]])), ({"a":1} | inside({"a":1,"b":2})), (.s | indices(",")), (.a | indices(1)), (.a | index(1)), (.a | rindex(1)), (.a | sort | bsearch(2))`,
		`{"s": "a,b,c", "a": [1, 2, 1]}`},
	{`sort_by(.k), group_by(.k), unique_by(.k), min_by(.k), max_by(.k), [.[] | .k | IN(1, 2)], [IN(.[].k; 2, 3)]`,
		`[{"k": 2}, {"k": 1}, {"k": 2}, {"k": 3}]`},
	{`INDEX(.id), INDEX(.[]; .id | tostring)`, `[{"id": 1}, {"id": "x"}]`},
	{`.a = 1, .a.b = 2, .[.k] = 3, .x |= . + 1, .x += 5, .x -= 1, .x *= 2, .x /= 4, .x %= 3, .y //= 7, .l[3] = 1, del(.x), to_entries`,
		`{"x": 2, "k": "z", "l": [0]}`},
	{`setpath(["a", 1]; 5), setpath(["a"], ["b"]; 1, 2), getpath(["x"]), pick(.x), delpaths([["x"]]), [paths]`, `{"x": {"y": 1}}`},
	{`fromstream(tostream), [tostream]`, `{"a": [1, {"b": 2}]}`},
	{`test("b"), test("B"; "i"), [match("a|b"; "g") | .offset], [match("(?<x>a)(c)?"; "g")], capture("(?<first>\\w+) (?<last>\\w+)")`, `"ab ab"`},
	{`[scan("a.")], [scan("(a)(.)")], split(", *"; null), [splits("b")], sub("a"; "X"), gsub("a"; "X"), gsub("(?<c>[ab])"; "<\(.c)>"), gsub(""; "-"), gsub("^"; ">")`, `"abc, abd,ab"`},
	{`[match("é"; "g") | .offset, .length], gsub("é"; "e"), [match("x*"; "g") | .offset]`, `"héhé xéx"`},
	{`[.[] | tonumber], (.[0] | tonumber | . + 1)`, `["12", "1.5", "1e3"]`},
	{`strftime("%Y-%m-%dT%H:%M:%SZ"), todate, (todate | fromdate)`, `1700000000`},
	{`def f(x): x * 2; def g: . + 1; [f(.[]), (.[] | g)], (def h($a; $b): $a + $b; h(1; 2))`, `[1, 2]`},
	{`def _helper: . + 1; _helper, (reduce .[] as $x (0; . + $x)), [foreach .[] as $x (0; . + $x)], [limit(2; .[])], first(.[]), [.[] | select(. > 1)]`, `[1, 2, 3]`},
	{`[.[] as [$a, $b] | $a + $b], [.[] as [$a] ?// $a | $a]`, `[[1, 2], [3, 4]]`},
	{`try error("x") catch ., try (.a + 1) catch "caught", (.a // "alt"), (.missing? // 0), [..]`, `{"a": "s"}`},
	{`.[] |= . * 2, map(. + 1), map_values(tostring), with_entries(.value += 1), walk(if type == "number" then . + 1 else . end), [combinations(2)] | length`, `[1, 2]`},
	{`label $out | .[] | if . > 1 then ., break $out else . end`, `[1, 2, 3]`},
	{`$ENV, env, builtins | length > 100`, `null`},
	{`.[[1]], .[[1, 2]], .[2:], .[:-1], .[-1], (.s | .[1:3]), (.s | .[[]]?)`, `[0, 1, 2, 1, 2]`},
	{`ltrimstr("a"), rtrimstr("c"), startswith("a"), endswith("c"), length, utf8bytelength`, `"abc"`},
	{`@sh "echo \(.)", @uri "q=\(.)", @csv "\([.])"`, `"a b'c"`},
}

func TestJQEquivalent(t *testing.T) {
	for _, tt := range jqEquivalent {
		t.Run(tt.expr, func(t *testing.T) {
			var in any
			dec := json.NewDecoder(strings.NewReader(tt.input))
			dec.UseNumber()
			if err := dec.Decode(&in); err != nil {
				t.Fatal(err)
			}
			q, err := gojq.Parse(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := gojq.Compile(q, gojq.WithEnvironLoader(func() []string { return nil }))
			if err != nil {
				t.Fatalf("gojq: %v", err)
			}
			want, wantErr := results(raw.Run(in))
			guarded, err := CompileJQ(tt.expr)
			if err != nil {
				t.Fatalf("CompileJQ: %v", err)
			}
			got, gotErr := results(guarded.Run(context.Background(), in, &testMeter{left: 64 << 20}))
			if d := cmp.Diff(jsonOf(t, want), jsonOf(t, got)); d != "" {
				t.Errorf("results differ from gojq's (-gojq +guarded):\n%s", d)
			}
			if (wantErr == nil) != (gotErr == nil) {
				t.Errorf("error %v, gojq's %v", gotErr, wantErr)
			}
		})
	}
}

func jsonOf(t *testing.T, vs []any) []string {
	var out []string
	for _, v := range vs {
		b, err := gojq.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// Expressions that would allocate without bound, or spend minutes in one
// builtin call, are refused by a guard before they do; a meter of 64 MiB
// lets through what is below it.
func TestJQLimits(t *testing.T) {
	tests := []struct {
		expr, input string
		want        error // nil: no error
	}{
		{`"x" * 1e9`, `null`, ErrJQMemory},
		{`("x" * 1e9 | length) > 0`, `null`, ErrJQMemory},
		{`"x" * 1e6 | length`, `null`, nil},
		{`. * .n`, `{"n": 1e9}`, errNotLimit}, // object * number: gojq's type error
		{`.s * .n`, `{"s": "xy", "n": 1e9}`, ErrJQMemory},
		{`.s *= 1e9`, `{"s": "xy"}`, ErrJQMemory},
		{`reduce range(40) as $i ("x"; . + .)`, `null`, ErrJQMemory},
		{`"\(reduce range(40) as $i (0; [., .]))"`, `null`, ErrJQWork},
		{`reduce range(40) as $i (0; [., .]) | tojson`, `null`, ErrJQWork},
		{`reduce range(40) as $i (0; [., .]) | tostring`, `null`, ErrJQWork},
		{`reduce range(40) as $i (0; [., .]) | @base64`, `null`, ErrJQWork},
		{`reduce range(40) as $i (0; [., .]) | . == .`, `null`, ErrJQWork},
		{`reduce range(40) as $i (0; [., .]) | [., 1] | sort`, `null`, ErrJQWork},
		{`reduce range(40) as $i (0; [., .]) | flatten | length`, `null`, ErrJQMemory},
		{`reduce range(40) as $i ({}; {a: ., b: .}) | . * .`, `null`, ErrJQWork},
		{`reduce range(40) as $i (0; [., .]) | IN(.)`, `null`, ErrJQWork},
		{`reduce range(40) as $i (0; [., .]) | [.] | sort_by(.)`, `null`, ErrJQWork},
		{`"y" * 1000 as $s | [limit(100000; repeat($s))] | add | length`, `null`, ErrJQMemory},
		{`reduce range(30) as $i ("x"; [., .]) | [limit(100000; repeat(.))] | add | length`, `null`, nil},
		{`[limit(100000; repeat("y" * 1000))] | join(",") | length`, `null`, ErrJQMemory},
		{`[[range(100000)]] + [limit(10000; repeat([]))] | transpose | length`, `null`, ErrJQMemory},
		{`.[100000000] = 1`, `[]`, ErrJQMemory},
		{`.a[.n] = 1`, `{"n": 100000000}`, ErrJQMemory},
		{`.a[100000000] |= 1`, `{"a": []}`, ErrJQMemory},
		{`setpath([100000000]; 1)`, `null`, ErrJQMemory},
		{`pick(.[100000000])`, `null`, ErrJQMemory},
		{`getpath([100000000]) = 1`, `null`, ErrJQMemory},
		{`.[1000] = 1 | length`, `null`, nil},
		{`"x" * 100000 | [match("x"; "g")] | length`, `null`, nil},
		{`"x" * 1000000 | [match(""; "g")] | length`, `null`, ErrJQMemory},
		{`"x" * 1000000 | gsub(""; "-") | length`, `null`, ErrJQMemory},
		{`"x" * 100 | test("x{1000}" * 2000)`, `null`, ErrJQMemory},
		{`"9" * 5000 | tonumber`, `null`, ErrJQWork},
		{`reduce range(30) as $i (3; . * .)`, `null`, ErrJQMemory},
		{`"[" + ("1," * 1000) + "1]" | fromjson | length`, `null`, nil},
		{`"1" * 5000 | fromjson`, `null`, ErrJQWork},
		{`[range(100000)] | .[[range(10)]]`, `null`, ErrJQWork},
		{`[range(3000)] as $a | $a | indices($a)`, `null`, ErrJQWork},
		{`reduce range(20000) as $i ([]; [.]) | tojson`, `null`, ErrJQWork},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			q, err := CompileJQ(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			var in any
			if err := json.Unmarshal([]byte(tt.input), &in); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			before := heapAllocs()
			_, err = results(q.Run(ctx, in, &testMeter{left: 64 << 20}))
			allocated := heapAllocs() - before
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("error %v", err)
			case tt.want == errNotLimit && (err == nil || errors.Is(err, ErrJQMemory) || errors.Is(err, ErrJQWork)):
				t.Fatalf("error %v, want gojq's own", err)
			case tt.want != nil && tt.want != errNotLimit && !errors.Is(err, tt.want):
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			// The meter's 64 MiB, what no guard charges (gojq's own
			// interpreter), and the test's decoding.
			if allocated > 160<<20 {
				t.Errorf("the evaluation allocated %d MiB", allocated>>20)
			}
		})
	}
}

// errNotLimit: an error that is not a guard's.
var errNotLimit = errors.New("gojq's error")

func heapAllocs() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// Names the guards rely on are reserved, and gojq's internal builtins are
// not callable: they would bypass the guards.
func TestCompileJQRefuses(t *testing.T) {
	for _, expr := range []string{
		`$__openhqm`, `. as $__openhqm | 1`, `def _openhqm_pre: 1; 1`, `_openhqm_pre($x; "tojson")`,
		`_match("a"; null; false)`, `_sort_by([1])`, `_modify(.a; 1)`, `def f(_openhqm_x): 1; f(2)`,
		`1` + strings.Repeat("0", MaxJQNumberLen), `{$__openhqm}`,
		strings.Repeat(". as $x | ", 1001) + ".", strings.Repeat(".a + ", 1001) + ".",
		"def f(x): x; " + strings.Repeat("f(", 1001) + "." + strings.Repeat(")", 1001),
	} {
		if _, err := CompileJQ(expr); err == nil {
			t.Errorf("%.40q compiled", expr)
		}
	}
	for _, expr := range []string{`def _f: 1; _f`, `def f(_x): _x; f(1)`, `$__loc__?`, `1` + strings.Repeat("0", 100),
		"[" + strings.Repeat("1, ", 10000) + "1]", strings.Repeat("(", 10000) + "." + strings.Repeat(")", 10000),
		strings.Repeat(". | ", 10000) + "."} {
		if _, err := CompileJQ(expr); err != nil && !strings.Contains(err.Error(), "$__loc__") {
			t.Errorf("%.40q: %v", expr, err)
		}
	}
}

func BenchmarkCompileJQ(b *testing.B) {
	for _, expr := range []string{`.tenant == "acme"`, orderExpr} {
		b.Run(fmt.Sprintf("%.20s", expr), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := CompileJQ(expr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

const orderExpr = `{
  order_id: .payload.order_id,
  items: [.payload.items[] | {product_id: .sku, quantity: .qty, price: .unit_price}],
  total: ([.payload.items[] | .qty * .unit_price] | add),
  currency: (.payload.currency // "USD")
}`

// Ordinary work on large values stays within the guards: summing numbers
// charges nothing, and sorting, comparing or searching a few hundred
// thousand elements is one step gojq does in tens of milliseconds.
func TestJQLargeButFine(t *testing.T) {
	for _, expr := range []string{
		`reduce range(300000) as $i (0; . + $i) | . > 0`,
		`[range(3000000)] | add > 0`,
		`[range(300000)] | unique | length > 0`,
		`[range(100000)] | sort | length > 0`,
		`[range(300000) | {k: .}] | sort_by(.k) | length > 0`,
		`[range(300000)] as $a | $a == ($a | map(.))`,
		`[range(100000) | {a: .}] | contains([{a: 5}])`,
		`[range(100000) | tostring] | join(",") | length > 0`,
	} {
		q, err := CompileJQ(expr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := results(q.Run(context.Background(), nil, &testMeter{left: 64 << 20}))
		if err != nil || len(got) != 1 || got[0] != true {
			t.Errorf("%s: %v, error %v", expr, got, err)
		}
	}
}

// FuzzCompileJQ compiles arbitrary expressions: CompileJQ must not panic,
// and what compiles must run under a meter and a deadline without panicking
// or answering after the deadline by more than one guarded step.
func FuzzCompileJQ(f *testing.F) {
	for _, tt := range jqEquivalent {
		f.Add(tt.expr, tt.input)
	}
	f.Add(`reduce range(40) as $i (0; [., .]) | tojson`, `null`)
	f.Add(`.[] as {a: $x, "b\(.)": [$y]} ?// $x | $x`, `[{"a": 1}]`)
	f.Fuzz(func(t *testing.T, expr, input string) {
		q, err := CompileJQ(expr)
		if err != nil {
			return
		}
		var in any
		if json.Unmarshal([]byte(input), &in) != nil {
			in = nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		it := q.Run(ctx, in, &testMeter{left: 16 << 20})
		for range 100 {
			v, ok := it.Next()
			if !ok {
				return
			}
			if _, isErr := v.(error); isErr {
				return
			}
		}
	})
}

// JQTextSize bounds gojq.Marshal's output from above, closely enough that a
// result just below a limit is not refused.
func TestJQTextSize(t *testing.T) {
	for _, src := range []string{
		`null`, `[]`, `{}`, `[1, -22, 333, 1.5, 1e300, -0.25]`, `{"a": [true, false, null], "b\"\u0001": "x\ny"}`,
		`[` + strings.Repeat(`12345,`, 1000) + `1]`, `"\u00e9\u2028"`,
	} {
		var v any
		if err := json.Unmarshal([]byte(src), &v); err != nil {
			t.Fatal(err)
		}
		b, _ := gojq.Marshal(v)
		n, err := JQTextSize(v, 1<<20)
		if err != nil || n < int64(len(b)) || n > int64(len(b))*3/2+4 {
			t.Errorf("%.40s: %d, error %v; Marshal writes %d bytes", src, n, err, len(b))
		}
	}
	shared, _ := results(mustCompile(t, `reduce range(60) as $i (0; [., .])`).Run(context.Background(), nil, &testMeter{left: 1 << 20}))
	if _, err := JQTextSize(shared[0], 10<<20); !errors.Is(err, ErrJQMemory) {
		t.Errorf("a value of 2^60 leaves: error %v", err)
	}
}

func mustCompile(t *testing.T, src string) *JQ {
	q, err := CompileJQ(src)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
