package config

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/itchyny/gojq"
)

// A jq expression comes from a configuration many people may edit and runs
// on bodies any client may send, so every evaluation must stay within a
// time and a memory budget. Time is the caller's: JQ.Run takes a context and
// gojq checks it between two instructions. Memory and the work of a single
// instruction are bounded here, because one builtin call ("x" * 1e9, tojson
// of a value that shares its parts, a sort or a regular expression over a
// large input) can allocate gigabytes or run for minutes before the context
// is looked at again.
//
// CompileJQ therefore rewrites the expression before compiling it:
//
//   - Operators that can build large values or compare large ones (+ - * /
//     and the comparisons) become calls of guard definitions, unless an
//     operand is a literal that makes them cheap (.amount > 100).
//   - Builtins that allocate in proportion to their input, or more, are
//     shadowed by definitions that first estimate what the call will
//     allocate and do, charge the allocation to the evaluation's JQMeter and
//     refuse work above maxJQWork; the original builtin then runs unchanged.
//   - Assignments check how far a path would grow an array (.[1e8] = 1).
//   - Regular expressions run on openhqm's own implementation, which counts
//     its matches and converts offsets in linear time.
//
// The guards reach the meter through the variable $__openhqm, passed by Run.
// Names starting with _openhqm and $__openhqm are reserved, and builtins
// whose names start with "_" (gojq's internals) cannot be called directly.

// ErrJQMemory means a builtin would allocate more than the evaluation's
// JQMeter still allows; nothing was allocated.
var ErrJQMemory = errors.New("the jq expression needs more memory than it may use")

// ErrJQWork means one builtin call would do more work than maxJQWork (a
// sort, comparison, search or serialization of a value that is too large or
// too deeply nested); it was not started.
var ErrJQWork = errors.New("one step of the jq expression would take too long")

// JQMeter accounts the memory of one evaluation of a JQ. Guards call it
// before a builtin allocates; an evaluation uses its meter from one
// goroutine at a time.
type JQMeter interface {
	// Charge reserves n bytes and reports whether the evaluation may use
	// them. After a refusal the builtin is not run.
	Charge(n int64) bool
	// Left returns how many bytes Charge would still accept; guards stop
	// measuring a value once it is larger.
	Left() int64
}

const (
	jqMeterVar = "$__openhqm"
	// maxJQWork bounds the work of one builtin call, in bytes of value it
	// visits or copies (a node counts 16): about 50 ms of sorting or
	// comparing on a server core.
	maxJQWork = 64 << 20
	// maxJQDepth bounds how deeply nested a value a guarded builtin accepts,
	// like encoding/json's limit for decoding: serializers and comparisons
	// recurse once per level.
	maxJQDepth = 10000
	// MaxJQNumberLen bounds the characters of a number written in an
	// expression or parsed by tonumber or fromjson: gojq parses long
	// integers in quadratic time.
	MaxJQNumberLen = 4096
)

// Run evaluates q on v. ctx bounds the time (its deadline or cancellation
// stops the evaluation between two instructions) and m the memory; both are
// required. v must be a value gojq accepts (as decoded by encoding/json). The
// iterator yields results and errors as gojq does; a guard's refusal is an
// error wrapping ErrJQMemory or ErrJQWork.
func (q *JQ) Run(ctx context.Context, v any, m JQMeter) gojq.Iter {
	return q.Code.RunWithContext(ctx, v, m)
}

// CompileJQ parses and compiles a jq expression so that its evaluations are
// bounded (see JQ.Run). $ENV and env are empty: the process's environment
// holds secrets (tokens read with env()) that an expression could copy into
// a request. The returned JQ is immutable and safe for concurrent use.
func CompileJQ(src string) (*JQ, error) {
	q, err := gojq.Parse(src)
	if err != nil {
		return nil, err
	}
	rw := &jqRewriter{used: map[string]bool{}}
	rw.query(q)
	if rw.err != nil {
		return nil, rw.err
	}
	defs, err := preludeFor(rw.used)
	if err != nil {
		return nil, fmt.Errorf("internal error: %w", err)
	}
	q.FuncDefs = append(defs, q.FuncDefs...)
	opts := append(jqGuards(), gojq.WithVariables([]string{jqMeterVar}),
		gojq.WithEnvironLoader(func() []string { return nil }))
	code, err := gojq.Compile(q, opts...)
	if err != nil {
		return nil, err
	}
	return &JQ{Source: src, Code: code}, nil
}

// jqRewriter checks a parsed expression and rewrites it in place (see the
// comment at the top of this file). used collects "name/arity" of every
// function the expression may call, so that only the guards it needs are
// compiled with it.
type jqRewriter struct {
	scope *jqScope
	used  map[string]bool
	depth int // of nested calls, bindings and guarded operators
	err   error
}

// maxJQNesting bounds how deeply calls, bindings and guarded operators
// nest: gojq compiles each level as a scope and looks names up through all
// of them, so compiling n levels takes n² steps (100,000 took 40 s).
const maxJQNesting = 1000

// enter descends one nesting level; false when that is too deep.
func (rw *jqRewriter) enter() bool {
	if rw.depth++; rw.depth > maxJQNesting {
		rw.fail("the expression nests calls, bindings or operators more than %d deep", maxJQNesting)
		return false
	}
	return true
}

func (rw *jqRewriter) leave() { rw.depth-- }

// jqScope is the chain of functions the expression defines, innermost
// first: a call to one of them is the user's, not a builtin.
type jqScope struct {
	funcs map[string]bool // "name/arity"
	outer *jqScope
}

func (rw *jqRewriter) defined(key string) bool {
	for s := rw.scope; s != nil; s = s.outer {
		if s.funcs[key] {
			return true
		}
	}
	return false
}

func (rw *jqRewriter) fail(format string, args ...any) {
	if rw.err == nil {
		rw.err = fmt.Errorf(format, args...)
	}
}

func (rw *jqRewriter) checkName(name string) {
	if strings.HasPrefix(name, "_openhqm") || strings.HasPrefix(name, jqMeterVar) {
		rw.fail("%s is a reserved name", name)
	}
}

func (rw *jqRewriter) query(q *gojq.Query) {
	if q == nil || rw.err != nil {
		return
	}
	if len(q.FuncDefs) > 0 {
		s := &jqScope{funcs: map[string]bool{}, outer: rw.scope}
		for _, fd := range q.FuncDefs {
			s.funcs[fd.Name+"/"+itoa(len(fd.Args))] = true
		}
		rw.scope = s
		defer func() { rw.scope = s.outer }()
		for _, fd := range q.FuncDefs {
			rw.funcDef(fd)
		}
	}
	if q.Term != nil {
		rw.term(q.Term)
		return
	}
	if nests := len(q.Patterns) > 0 || jqOperatorFunc[q.Op] != "" && !cheapOperation(q.Op, q.Left, q.Right) ||
		q.Op == gojq.OpAssign || q.Op == gojq.OpModify || q.Op == gojq.OpUpdateAlt || q.Op == gojq.OpUpdateMod; nests {
		if !rw.enter() {
			return
		}
		defer rw.leave()
	}
	rw.query(q.Left)
	for _, p := range q.Patterns {
		rw.pattern(p)
	}
	rw.query(q.Right)
	switch q.Op {
	case gojq.OpAdd, gojq.OpSub, gojq.OpMul, gojq.OpDiv,
		gojq.OpEq, gojq.OpNe, gojq.OpGt, gojq.OpLt, gojq.OpGe, gojq.OpLe:
		if !cheapOperation(q.Op, q.Left, q.Right) {
			rw.call(q, jqOperatorFunc[q.Op], q.Left, q.Right)
		}
	case gojq.OpAssign:
		// Through _assign even for constant paths, which gojq would
		// otherwise compile into a direct, unchecked setpath.
		rw.call(q, "_assign", q.Left, q.Right)
	case gojq.OpModify, gojq.OpUpdateAlt, gojq.OpUpdateMod:
		rw.used["_modify/2"] = true
	case gojq.OpUpdateAdd, gojq.OpUpdateSub, gojq.OpUpdateMul, gojq.OpUpdateDiv:
		// gojq compiles a op= b into _modify(a; _op(.; $b)) and looks both
		// names up, so the guard definitions take effect.
		rw.used["_modify/2"] = true
		rw.used[jqOperatorFunc[q.Op]+"/2"] = true
	}
}

// jqOperatorFunc names the function gojq calls for an operator; the guard
// definitions shadow these names.
var jqOperatorFunc = map[gojq.Operator]string{
	gojq.OpAdd: "_add", gojq.OpSub: "_subtract", gojq.OpMul: "_multiply", gojq.OpDiv: "_divide",
	gojq.OpUpdateAdd: "_add", gojq.OpUpdateSub: "_subtract", gojq.OpUpdateMul: "_multiply", gojq.OpUpdateDiv: "_divide",
	gojq.OpEq: "_equal", gojq.OpNe: "_notequal", gojq.OpGt: "_greater", gojq.OpLt: "_less",
	gojq.OpGe: "_greatereq", gojq.OpLe: "_lesseq",
}

// call turns q into a call of name with args, keeping its definitions.
func (rw *jqRewriter) call(q *gojq.Query, name string, args ...*gojq.Query) {
	rw.used[name+"/"+itoa(len(args))] = true
	*q = gojq.Query{FuncDefs: q.FuncDefs, Term: &gojq.Term{Type: gojq.TermTypeFunc, Func: &gojq.Func{Name: name, Args: args}}}
}

// cheapOperation reports whether an operator cannot allocate or compare
// much whatever its other operand: comparing with a scalar literal, and
// arithmetic with a number literal (anything but a number is then an error)
// except *, which repeats a string.
func cheapOperation(op gojq.Operator, l, r *gojq.Query) bool {
	switch op {
	case gojq.OpMul:
		return numberLiteral(l) && numberLiteral(r)
	case gojq.OpAdd, gojq.OpSub, gojq.OpDiv:
		return numberLiteral(l) || numberLiteral(r) || literal(l, gojq.TermTypeNull) || literal(r, gojq.TermTypeNull)
	default:
		return scalarLiteral(l) || scalarLiteral(r)
	}
}

func numberLiteral(q *gojq.Query) bool {
	if q == nil || q.Term == nil || len(q.FuncDefs) > 0 || len(q.Term.SuffixList) > 0 {
		return false
	}
	t := q.Term
	if t.Type == gojq.TermTypeUnary && t.Unary.Term != nil && len(t.Unary.Term.SuffixList) == 0 {
		t = t.Unary.Term
	}
	return t.Type == gojq.TermTypeNumber
}

func literal(q *gojq.Query, typ gojq.TermType) bool {
	return q != nil && q.Term != nil && len(q.FuncDefs) == 0 && len(q.Term.SuffixList) == 0 && q.Term.Type == typ
}

func scalarLiteral(q *gojq.Query) bool {
	if numberLiteral(q) || literal(q, gojq.TermTypeNull) || literal(q, gojq.TermTypeTrue) || literal(q, gojq.TermTypeFalse) {
		return true
	}
	return literal(q, gojq.TermTypeString) && q.Term.Str.Queries == nil
}

func (rw *jqRewriter) funcDef(fd *gojq.FuncDef) {
	rw.checkName(fd.Name)
	if !rw.enter() {
		return
	}
	defer rw.leave()
	s := &jqScope{funcs: map[string]bool{}, outer: rw.scope}
	for _, a := range fd.Args {
		rw.checkName(a)
		// A parameter $x is also the filter x.
		s.funcs[strings.TrimPrefix(a, "$")+"/0"] = true
	}
	rw.scope = s
	rw.query(fd.Body)
	rw.scope = s.outer
}

func (rw *jqRewriter) pattern(p *gojq.Pattern) {
	if p == nil {
		return
	}
	rw.checkName(p.Name)
	for _, e := range p.Array {
		rw.pattern(e)
	}
	for _, o := range p.Object {
		rw.checkName(o.Key)
		if o.KeyString != nil && o.KeyString.Queries != nil {
			o.KeyQuery, o.KeyString = &gojq.Query{Term: rw.interpolation(o.KeyString, "")}, nil
		} else {
			rw.query(o.KeyQuery)
		}
		rw.pattern(o.Val)
	}
}

func (rw *jqRewriter) term(t *gojq.Term) {
	if rw.err != nil {
		return
	}
	switch t.Type {
	case gojq.TermTypeIndex:
		rw.index(t.Index)
	case gojq.TermTypeFunc:
		rw.function(t.Func)
	case gojq.TermTypeObject:
		for _, kv := range t.Object.KeyVals {
			if strings.HasPrefix(kv.Key, "$") {
				rw.checkName(kv.Key)
			}
			if kv.KeyString != nil && kv.KeyString.Queries != nil {
				kv.KeyQuery, kv.KeyString = &gojq.Query{Term: rw.interpolation(kv.KeyString, "")}, nil
			} else {
				rw.query(kv.KeyQuery)
			}
			rw.query(kv.Val)
		}
	case gojq.TermTypeArray:
		rw.query(t.Array.Query)
	case gojq.TermTypeNumber:
		if len(t.Number) > MaxJQNumberLen {
			rw.fail("a number has more than %d characters", MaxJQNumberLen)
		}
	case gojq.TermTypeUnary:
		rw.term(t.Unary.Term)
	case gojq.TermTypeFormat:
		if t.Str != nil && t.Str.Queries != nil {
			*t = gojq.Term{Type: gojq.TermTypeQuery, Query: &gojq.Query{Term: rw.interpolation(t.Str, t.Format)}, SuffixList: t.SuffixList}
		} else {
			f := formatFunc(t.Format)
			rw.used[f.Name+"/"+itoa(len(f.Args))] = true
		}
	case gojq.TermTypeString:
		if t.Str.Queries != nil {
			*t = gojq.Term{Type: gojq.TermTypeQuery, Query: &gojq.Query{Term: rw.interpolation(t.Str, "")}, SuffixList: t.SuffixList}
		}
	case gojq.TermTypeIf:
		rw.query(t.If.Cond)
		rw.query(t.If.Then)
		for _, e := range t.If.Elif {
			rw.query(e.Cond)
			rw.query(e.Then)
		}
		rw.query(t.If.Else)
	case gojq.TermTypeTry:
		rw.query(t.Try.Body)
		rw.query(t.Try.Catch)
	case gojq.TermTypeReduce:
		if !rw.enter() {
			return
		}
		defer rw.leave()
		rw.query(t.Reduce.Query)
		for _, p := range t.Reduce.Patterns {
			rw.pattern(p)
		}
		rw.query(t.Reduce.Start)
		rw.query(t.Reduce.Update)
	case gojq.TermTypeForeach:
		if !rw.enter() {
			return
		}
		defer rw.leave()
		rw.query(t.Foreach.Query)
		for _, p := range t.Foreach.Patterns {
			rw.pattern(p)
		}
		rw.query(t.Foreach.Start)
		rw.query(t.Foreach.Update)
		rw.query(t.Foreach.Extract)
	case gojq.TermTypeLabel:
		rw.query(t.Label.Body)
	case gojq.TermTypeQuery:
		rw.query(t.Query)
	}
	for _, s := range t.SuffixList {
		if s.Index != nil {
			rw.index(s.Index)
		}
	}
}

func (rw *jqRewriter) function(f *gojq.Func) {
	if strings.HasPrefix(f.Name, "$") {
		rw.checkName(f.Name)
		return
	}
	if len(f.Args) > 0 {
		if !rw.enter() {
			return
		}
		defer rw.leave()
	}
	for _, a := range f.Args {
		rw.query(a)
	}
	key := f.Name + "/" + itoa(len(f.Args))
	if rw.defined(key) {
		return
	}
	if strings.HasPrefix(f.Name, "_") {
		rw.fail("%s is internal to the jq implementation and cannot be called", key)
		return
	}
	rw.used[key] = true
}

// index rewrites .[e] so that a computed key is checked: an array key makes
// gojq search the indexed array for it, which takes len × key length.
func (rw *jqRewriter) index(x *gojq.Index) {
	if x.Str != nil && x.Str.Queries != nil {
		x.Start, x.Str = &gojq.Query{Term: rw.interpolation(x.Str, "")}, nil
	} else {
		rw.query(x.Start)
	}
	rw.query(x.End)
	if x.IsSlice || x.Start == nil || scalarLiteral(x.Start) {
		return
	}
	x.Start = &gojq.Query{Left: x.Start, Op: gojq.OpPipe, Right: &gojq.Query{Term: &gojq.Term{
		Type: gojq.TermTypeFunc, Func: &gojq.Func{Name: "_openhqm_key", Args: []*gojq.Query{meterArg()}},
	}}}
}

// interpolation rewrites "a\(x)b" as gojq compiles it, "a" + (x | f) + "b",
// but with the guarded + and the guarded (shadowed) f, so that neither the
// conversions nor the concatenations escape the meter. format is the @name
// applied to each interpolated value, "" for plain strings.
func (rw *jqRewriter) interpolation(s *gojq.String, format string) *gojq.Term {
	f := &gojq.Func{Name: "tostring"}
	if format != "" {
		f = formatFunc(format)
	}
	if len(s.Queries) > maxJQNesting { // the concatenations nest
		rw.fail("a string interpolates more than %d values", maxJQNesting)
		return &gojq.Term{Type: gojq.TermTypeNull}
	}
	var q *gojq.Query
	for _, e := range s.Queries {
		// gojq converts what is not a string literal; a literal piece may
		// itself interpolate ("\("a\(.)")"), so it is walked too.
		convert := e.Term == nil || e.Term.Str == nil
		rw.query(e)
		if convert {
			rw.used[f.Name+"/"+itoa(len(f.Args))] = true
			e = &gojq.Query{Left: e, Op: gojq.OpPipe, Right: &gojq.Query{Term: &gojq.Term{Type: gojq.TermTypeFunc, Func: f}}}
		}
		if q == nil {
			q = e
			continue
		}
		prev := q
		q = &gojq.Query{}
		rw.call(q, "_add", prev, e)
	}
	if q == nil {
		return &gojq.Term{Type: gojq.TermTypeString, Str: &gojq.String{}}
	}
	return &gojq.Term{Type: gojq.TermTypeQuery, Query: q}
}

// formatFunc is the function gojq calls for @name (see gojq's formatToFunc).
func formatFunc(format string) *gojq.Func {
	switch format {
	case "@text":
		return &gojq.Func{Name: "tostring"}
	case "@json":
		return &gojq.Func{Name: "tojson"}
	case "@html", "@uri", "@urid", "@csv", "@tsv", "@sh", "@base64", "@base64d":
		return &gojq.Func{Name: "_to" + format[1:]}
	default:
		return &gojq.Func{Name: "format", Args: []*gojq.Query{{Term: &gojq.Term{Type: gojq.TermTypeString, Str: &gojq.String{Str: format[1:]}}}}}
	}
}

func meterArg() *gojq.Query {
	return &gojq.Query{Term: &gojq.Term{Type: gojq.TermTypeFunc, Func: &gojq.Func{Name: jqMeterVar}}}
}

func itoa(n int) string { return fmt.Sprint(n) }
