package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
)

// MaxNesting bounds how deeply a value may nest: brackets, parentheses,
// braces, quoted templates and their interpolations, heredocs, template
// directives, and chains of operators (each of which the HCL parser or
// evaluator handles with one more level of recursion). The parsers recurse
// per level, so without a bound a value nested 100,000 levels overflows the
// goroutine stack, which Go cannot recover from. No configuration needs more
// than a handful of levels; 100 leaves room for generated ones.
const MaxNesting = 100

// chunkSize is the size of the pieces a native-syntax file is parsed in. The
// HCL parser holds every token of what it parses (about 100 bytes per token,
// several tokens per line), so a 50 MB file parsed whole takes gigabytes;
// parsed a top-level block at a time, only one piece's tokens live at once.
// Tests lower it to cut every file into its top-level items.
var chunkSize = 64 << 10

// parseSource parses one source as HCL or, for a name ending in ".json",
// HCL's JSON syntax, refusing values nested deeper than MaxNesting before
// the parser can recurse into them. It calls each with the body of every
// piece in order (a native-syntax file is parsed in pieces of about
// chunkSize, a JSON file whole), and returns the file to render diagnostics
// with: it keeps the source and a navigator but not the syntax trees, which
// can be collected once each has been decoded.
func parseSource(s source, each func(hcl.Body)) (*hcl.File, hcl.Diagnostics) {
	if isJSON(s.name) {
		nav := &chunkNav{src: s.src, name: s.name, json: true, starts: []hcl.Pos{hcl.InitialPos}}
		file := &hcl.File{Body: hcl.EmptyBody(), Bytes: s.src, Nav: nav}
		if len(s.src) > maxPieceSize {
			// JSON has no top-level items to cut between: the file is one
			// piece, and its parser holds every token of it.
			at := byteRange(s.src, s.name, 0)
			return file, hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "File too large",
				Detail:   fmt.Sprintf("A *.hcl.json file is read whole and may take at most %s; this one takes %s. Split it into several files of the directory, or write it in native syntax.", byteSize(maxPieceSize), byteSize(int64(len(s.src)))),
				Subject:  &at,
			}}
		}
		if d := jsonNesting(s.src, s.name); d != nil {
			return file, hcl.Diagnostics{d}
		}
		f, diags := hcljson.Parse(s.src, s.name)
		if f != nil && f.Body != nil {
			each(f.Body)
		}
		return file, diags
	}
	nav := &chunkNav{src: s.src, name: s.name}
	file := &hcl.File{Body: hcl.EmptyBody(), Bytes: s.src, Nav: nav}
	ends, exact, deep := splitTopLevel(s.src, chunkSize)
	if deep >= 0 {
		// Brackets and strings alone already nest too deep (random bytes do
		// within a few hundred): no need to lex further.
		return file, hcl.Diagnostics{nestingDiag(byteRange(s.src, s.name, deep))}
	}
	var diags hcl.Diagnostics
	pos := hcl.InitialPos
	for i, end := range ends {
		piece := s.src[pos.Byte:end]
		nav.starts = append(nav.starts, pos)
		if len(piece) > maxPieceSize {
			// The parser keeps every token of what it parses: this bounds
			// its memory as the nesting bound does its stack.
			at := byteRange(s.src, s.name, pos.Byte)
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Block too large",
				Detail:   fmt.Sprintf("This top-level block or attribute takes %s; one is at most %s. Split it into several blocks or files.", byteSize(int64(len(piece))), byteSize(maxPieceSize)),
				Subject:  &at,
			})
		} else if d := hclNestingIf(exact[i], piece, s.name, pos); d != nil {
			diags = append(diags, d)
		} else {
			f, ds := hclsyntax.ParseConfig(piece, s.name, pos)
			diags = append(diags, ds...)
			if f != nil && f.Body != nil {
				each(f.Body)
			}
		}
		pos = advance(pos, piece)
	}
	return file, diags
}

// advance returns the position after text that starts at pos. Columns count
// characters, as HCL's do (which counts grapheme clusters; the two differ
// only for combining characters).
func advance(pos hcl.Pos, text []byte) hcl.Pos {
	pos.Byte += len(text)
	if n := bytes.Count(text, []byte{'\n'}); n > 0 {
		pos.Line += n
		pos.Column = 1 + utf8.RuneCount(text[bytes.LastIndexByte(text, '\n')+1:])
	} else {
		pos.Column += utf8.RuneCount(text)
	}
	return pos
}

// maxPieceSize bounds one top-level block or attribute of native syntax, and
// a file of JSON syntax.
const maxPieceSize = 8 << 20

// chunkNav answers the "in block ..." context of a diagnostic for a file
// parsed in pieces, by parsing again the piece that holds the offset: it is
// needed only for the few diagnostics rendered, and keeping every piece's
// syntax tree for it would keep the memory the pieces exist to save.
type chunkNav struct {
	src    []byte
	name   string
	json   bool      // HCL's JSON syntax, in one piece
	starts []hcl.Pos // the start of each piece; a piece ends where the next starts

	mu   sync.Mutex
	last int
	nav  any // the navigator of piece last
}

// ContextString implements the interface hcl's diagnostic writers look for.
func (n *chunkNav) ContextString(offset int) string {
	i := len(n.starts) - 1
	for i > 0 && n.starts[i].Byte > offset {
		i--
	}
	if i < 0 {
		return ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nav == nil || n.last != i {
		end := len(n.src)
		if i+1 < len(n.starts) {
			end = n.starts[i+1].Byte
		}
		var f *hcl.File
		if n.json {
			f, _ = hcljson.Parse(n.src, n.name)
		} else {
			f, _ = hclsyntax.ParseConfig(n.src[n.starts[i].Byte:end], n.name, n.starts[i])
		}
		if f == nil {
			return ""
		}
		n.nav, n.last = f.Nav, i
	}
	if cs, ok := n.nav.(interface{ ContextString(int) string }); ok {
		return cs.ContextString(offset)
	}
	return ""
}

// splitTopLevel returns the ends of the pieces src can be parsed in: each
// piece is at least size bytes (but the last) and ends after a newline that
// is outside any bracket, string, heredoc, template or comment, where HCL
// ends a top-level attribute or block. The scan follows the HCL lexer's
// rules for those; it needs to be exact only for valid input, since a cut
// inside a construct of a broken file leaves a piece that fails to parse
// as the whole file would. deep is the offset where those constructs nest
// deeper than MaxNesting (each is a level the token count sees too), or -1.
//
// exact[i] says whether piece i needs the exact count of hclNesting: the
// scan bounds each top-level item's nesting from above by its deepest
// bracket, string and template plus every operator character outside
// strings (and every %{ inside them), and when that is within MaxNesting, as
// it is for any ordinary block, lexing the piece a second time is spared.
func splitTopLevel(src []byte, size int) (ends []int, exact []bool, deep int) {
	type mode struct {
		kind   byte // 'c' bracket, 'i' template interpolation, 's' quoted string, 'h' heredoc
		close  byte
		marker []byte
		sol    bool // heredoc: at the start of a line
	}
	var stack []mode
	last := 0
	itemDepth, itemOps, pieceExact := 0, 0, false
	endItem := func() {
		if itemDepth+itemOps > MaxNesting {
			pieceExact = true
		}
		itemDepth, itemOps = 0, 0
	}
	for i := 0; i < len(src); {
		if len(stack) > MaxNesting {
			return nil, nil, i - 1
		}
		itemDepth = max(itemDepth, len(stack))
		if len(stack) > 0 && stack[len(stack)-1].kind == 's' {
			switch c := src[i]; {
			case c == '\\':
				i += 2
			case c == '"':
				stack = stack[:len(stack)-1]
				i++
			case (c == '$' || c == '%') && i+2 < len(src) && src[i+1] == c && src[i+2] == '{':
				i += 3 // $${ and %%{ are literal
			case (c == '$' || c == '%') && i+1 < len(src) && src[i+1] == '{':
				if c == '%' {
					itemOps++
				}
				stack = append(stack, mode{kind: 'i', close: '}'})
				i += 2
			default:
				i++
			}
			continue
		}
		if len(stack) > 0 && stack[len(stack)-1].kind == 'h' {
			top := &stack[len(stack)-1]
			if top.sol {
				eol := bytes.IndexByte(src[i:], '\n')
				if eol < 0 {
					eol = len(src) - i
				}
				if bytes.Equal(bytes.TrimSpace(src[i:i+eol]), top.marker) {
					stack = stack[:len(stack)-1]
					i += eol // the newline ends the attribute, in the enclosing mode
					continue
				}
				top.sol = false
			}
			switch c := src[i]; {
			case c == '\n':
				top.sol = true
				i++
			case (c == '$' || c == '%') && i+2 < len(src) && src[i+1] == c && src[i+2] == '{':
				i += 3
			case (c == '$' || c == '%') && i+1 < len(src) && src[i+1] == '{':
				if c == '%' {
					itemOps++
				}
				stack = append(stack, mode{kind: 'i', close: '}'})
				i += 2
			default:
				i++
			}
			continue
		}
		switch c := src[i]; {
		case c == '#' || (c == '/' && i+1 < len(src) && src[i+1] == '/'):
			if eol := bytes.IndexByte(src[i:], '\n'); eol >= 0 {
				i += eol
			} else {
				i = len(src)
			}
		case c == '/' && i+1 < len(src) && src[i+1] == '*':
			if end := bytes.Index(src[i+2:], []byte("*/")); end >= 0 {
				i += end + 4
			} else {
				i = len(src)
			}
		case c == '"':
			stack = append(stack, mode{kind: 's'})
			i++
		case c == '<' && i+1 < len(src) && src[i+1] == '<':
			j := i + 2
			if j < len(src) && src[j] == '-' {
				j++
			}
			k := j
			for k < len(src) && (isIdentByte(src[k]) || (k > j && src[k] == '-')) {
				k++
			}
			nl := k
			if nl < len(src) && src[nl] == '\r' {
				nl++
			}
			if k > j && nl < len(src) && src[nl] == '\n' {
				stack = append(stack, mode{kind: 'h', marker: src[j:k], sol: true})
				i = nl + 1
			} else {
				itemOps += 2
				i += 2
			}
		case c == '{':
			stack = append(stack, mode{kind: 'c', close: '}'})
			i++
		case c == '[':
			itemOps++ // an index applies to what precedes it
			stack = append(stack, mode{kind: 'c', close: ']'})
			i++
		case c == '(':
			stack = append(stack, mode{kind: 'c', close: ')'})
			i++
		case c == '}' || c == ']' || c == ')':
			if len(stack) > 0 && stack[len(stack)-1].close == c {
				stack = stack[:len(stack)-1]
			}
			i++
		case c == '\n':
			i++
			if len(stack) == 0 {
				endItem()
				if i-last >= size && i < len(src) {
					ends, exact = append(ends, i), append(exact, pieceExact)
					last, pieceExact = i, false
				}
			}
		default:
			if strings.IndexByte("!-?*+/%<>&|", c) >= 0 || (c == '=' && i+1 < len(src) && src[i+1] == '=') {
				itemOps++
			}
			i++
		}
	}
	endItem()
	return append(ends, len(src)), append(exact, pieceExact), -1
}

func isIdentByte(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80
}

func hclNestingIf(needed bool, src []byte, name string, start hcl.Pos) *hcl.Diagnostic {
	if !needed {
		return nil
	}
	return hclNesting(src, name, start)
}

// hclNesting lexes a piece of native syntax and reports the first place it
// nests deeper than MaxNesting, or nil. The lexer is the parser's own and
// does not recurse, so its tokens show exactly what the parser would
// descend into.
func hclNesting(src []byte, name string, start hcl.Pos) *hcl.Diagnostic {
	toks, _ := hclsyntax.LexConfig(src, name, start)
	return tokenNesting(toks, 0)
}

// tokenNesting counts nesting over tokens, from base levels already open
// around them. A level is an open bracket, parenthesis, brace, quote,
// heredoc, interpolation or directive, or an operator in the expression
// being read (unary and conditional operators recurse in the parser, binary
// ones and indexes in evaluation); the operators of an item are forgotten at
// the comma or newline that ends it.
func tokenNesting(toks hclsyntax.Tokens, base int) *hcl.Diagnostic {
	type frame struct {
		open     hclsyntax.TokenType
		ops      int
		closeDir bool // a %{ endif } or %{ endfor }: closing it closes a directive too
	}
	stack := []frame{{open: hclsyntax.TokenNil}}
	depth := base
	closes := map[hclsyntax.TokenType]hclsyntax.TokenType{
		hclsyntax.TokenCBrace: hclsyntax.TokenOBrace, hclsyntax.TokenCBrack: hclsyntax.TokenOBrack,
		hclsyntax.TokenCParen: hclsyntax.TokenOParen, hclsyntax.TokenCQuote: hclsyntax.TokenOQuote,
		hclsyntax.TokenCHeredoc: hclsyntax.TokenOHeredoc,
	}
	pop := func() {
		depth -= 1 + stack[len(stack)-1].ops
		stack = stack[:len(stack)-1]
	}
	for i := range toks {
		t := &toks[i]
		top := &stack[len(stack)-1]
		switch t.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen, hclsyntax.TokenOQuote,
			hclsyntax.TokenOHeredoc, hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			if t.Type == hclsyntax.TokenOBrack { // an index applies to what precedes it
				top.ops++
				depth++
			}
			f := frame{open: t.Type}
			if t.Type == hclsyntax.TokenTemplateControl && i+1 < len(toks) && toks[i+1].Type == hclsyntax.TokenIdent {
				switch string(toks[i+1].Bytes) {
				case "if", "for":
					stack = append(stack, frame{open: hclsyntax.TokenNil})
					depth++
				case "endif", "endfor":
					f.closeDir = true
				}
			}
			stack = append(stack, f)
			depth++
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen, hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc:
			if len(stack) > 1 && top.open == closes[t.Type] {
				pop()
			}
		case hclsyntax.TokenTemplateSeqEnd:
			if len(stack) > 1 && (top.open == hclsyntax.TokenTemplateInterp || top.open == hclsyntax.TokenTemplateControl) {
				closeDir := top.closeDir
				pop()
				if closeDir && len(stack) > 1 && stack[len(stack)-1].open == hclsyntax.TokenNil {
					pop()
				}
			}
		case hclsyntax.TokenComma:
			depth -= top.ops
			top.ops = 0
		case hclsyntax.TokenNewline:
			if top.open == hclsyntax.TokenNil || top.open == hclsyntax.TokenOBrace {
				depth -= top.ops
				top.ops = 0
			}
		case hclsyntax.TokenBang, hclsyntax.TokenMinus, hclsyntax.TokenQuestion, hclsyntax.TokenStar,
			hclsyntax.TokenPlus, hclsyntax.TokenSlash, hclsyntax.TokenPercent, hclsyntax.TokenEqualOp,
			hclsyntax.TokenNotEqual, hclsyntax.TokenLessThan, hclsyntax.TokenLessThanEq,
			hclsyntax.TokenGreaterThan, hclsyntax.TokenGreaterThanEq, hclsyntax.TokenAnd, hclsyntax.TokenOr:
			top.ops++
			depth++
		}
		if depth > MaxNesting {
			return nestingDiag(t.Range)
		}
	}
	return nil
}

func nestingDiag(at hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Nesting deeper than %d levels", MaxNesting),
		Detail: fmt.Sprintf("Here the value is nested more than %d levels deep (brackets, braces, parentheses, templates and operators each count), far more than any configuration needs; "+
			"openhqm stops reading rather than risk running out of stack. Flatten the value.", MaxNesting),
		Subject: &at,
	}
}

// jsonNesting reports the first place a JSON file nests deeper than
// MaxNesting, counting the arrays and objects around each string with the
// template nesting inside it (HCL evaluates JSON strings as templates), or
// nil. It reads the JSON with a tokenizer, which does not recurse.
func jsonNesting(src []byte, name string) *hcl.Diagnostic {
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // the parser reports syntax errors, located
		}
		switch t := tok.(type) {
		case json.Delim:
			if t == '[' || t == '{' {
				depth++
			} else {
				depth--
			}
			if depth > MaxNesting {
				return nestingDiag(byteRange(src, name, int(dec.InputOffset())-1))
			}
		case string:
			if !strings.Contains(t, "${") && !strings.Contains(t, "%{") {
				continue
			}
			toks, _ := hclsyntax.LexTemplate([]byte(t), name, hcl.InitialPos)
			if d := tokenNesting(toks, depth); d != nil {
				// The template's own positions are inside the decoded
				// string; point at the string instead.
				return nestingDiag(byteRange(src, name, int(dec.InputOffset())-1))
			}
		}
	}
}

// byteRange is the one-byte range at offset of src.
func byteRange(src []byte, name string, offset int) hcl.Range {
	offset = max(0, min(offset, len(src)))
	start := advance(hcl.InitialPos, src[:offset])
	end := start
	end.Byte++
	end.Column++
	return hcl.Range{Filename: name, Start: start, End: end}
}
