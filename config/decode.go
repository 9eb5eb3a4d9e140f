package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/gocty"
)

// decoder fills the raw structs from HCL bodies one attribute at a time, so a
// missing env() variable or file() can be reported at the attribute that
// asked for it, with a severity that depends on the mode.
type decoder struct {
	mode    LoadMode
	lookup  func(string) (string, bool)
	sink    *diagSink
	missing []funcProblem // problems of env() and file() in the attribute being evaluated
	ctx     *hcl.EvalContext
	dir     string      // directory of the file being decoded, for file()
	src     *sourceFile // the file being decoded
	at      *hcl.Range  // the attribute being evaluated, for a report of a panic
	// origin, when set, says where the values of a generated source came
	// from (FromEnv's variables), by the attribute's range.
	origin func(hcl.Range) string
}

func newDecoder(opts Options) *decoder {
	d := &decoder{mode: opts.Mode, lookup: opts.LookupEnv, sink: &diagSink{}, origin: opts.origin}
	if d.lookup == nil {
		d.lookup = os.LookupEnv
	}
	d.ctx = &hcl.EvalContext{Functions: map[string]function.Function{
		"env":  d.envFunc(),
		"file": d.fileFunc(),
	}}
	return d
}

func (d *decoder) envFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable, or the default when it is unset.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String, AllowMarked: true}},
		VarParam:    &function.Parameter{Name: "default", Type: cty.String},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 2 {
				return cty.NilVal, fmt.Errorf("env takes a variable name and an optional default, got %d arguments", len(args))
			}
			// A name computed from env() or file() is not quoted either.
			nameVal, nameMarks := args[0].Unmark()
			name, shown := nameVal.AsString(), ""
			if o := describeOrigins(nameMarks); o != "" {
				shown = "named by " + o
			} else {
				shown = strconv.Quote(name)
			}
			if name == "" {
				return cty.NilVal, fmt.Errorf("the variable name is empty")
			}
			if v, ok := d.lookup(name); ok {
				return cty.StringVal(v).WithMarks(nameMarks).Mark(origin(fmt.Sprintf("env(%s)", strconv.Quote(name)))), nil
			}
			if len(args) == 2 {
				return args[1].WithMarks(nameMarks), nil
			}
			detail := fmt.Sprintf("The environment variable %s is not set. Set it, or give a default with env(%s, \"default\").", shown, shown)
			if len(nameMarks) > 0 {
				detail = fmt.Sprintf("The environment variable %s is not set. Set it, or give env() a default.", shown)
			}
			d.missing = append(d.missing, funcProblem{summary: "Missing environment variable", detail: detail})
			return cty.StringVal("").WithMarks(nameMarks), nil
		},
	})
}

func (d *decoder) fileFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Returns the contents of a file (relative to the configuration file's directory) without its trailing newline.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String, AllowMarked: true}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			pathVal, pathMarks := args[0].Unmark()
			p := pathVal.AsString()
			if p == "" {
				return cty.NilVal, fmt.Errorf("the path is empty")
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(d.dir, p)
			}
			// A path computed from env() or file() is not quoted either.
			shown := strconv.Quote(p)
			if o := describeOrigins(pathMarks); o != "" {
				shown = "named by " + o
			}
			empty := cty.StringVal("").WithMarks(pathMarks)
			b, err := readRegular(p, MaxSecretSize)
			var notReg *notRegularError
			var tooLarge *tooLargeError
			switch {
			case errors.As(err, &notReg):
				d.missing = append(d.missing, funcProblem{summary: "Not a regular file", always: true,
					detail: fmt.Sprintf("The file %s is %s, but file() reads only regular files (or symlinks to them), such as a mounted secret.", shown, notReg.kind)})
				return empty, nil
			case errors.As(err, &tooLarge):
				size := "larger"
				if tooLarge.size >= 0 {
					size = byteSize(tooLarge.size) + ","
				}
				d.missing = append(d.missing, funcProblem{summary: "File too large", always: true,
					detail: fmt.Sprintf("The file %s is %s but file() reads at most %s, enough for any secret. Point it at the secret itself.", shown, size, byteSize(MaxSecretSize))})
				return empty, nil
			case err != nil:
				reason := "does not exist"
				if !errors.Is(err, fs.ErrNotExist) {
					reason = "cannot be read: " + errReason(err)
				}
				d.missing = append(d.missing, funcProblem{summary: "Missing file", detail: fmt.Sprintf("The file %s %s. Mount the secret there, or fix the path (relative paths start at the configuration file's directory).", shown, reason)})
				return empty, nil
			}
			s := strings.TrimSuffix(string(b), "\n")
			s = strings.TrimSuffix(s, "\r")
			return cty.StringVal(s).WithMarks(pathMarks).Mark(origin(fmt.Sprintf("file(%s)", strconv.Quote(p)))), nil
		},
	})
}

// funcProblem is a problem of an env() or file() call. A missing variable
// or file is an error for serve and a warning for validate (CI has no
// production secrets); a file that exists but cannot be a secret is always
// an error.
type funcProblem struct {
	summary, detail string
	always          bool
}

// errReason is the innermost message of a file system error, without the
// operation and path the caller already states.
func errReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

type fieldKind int

const (
	fieldAttr fieldKind = iota
	fieldBlock
	fieldBlocks
	fieldLabel
)

type fieldInfo struct {
	name     string
	index    int
	kind     fieldKind
	required bool
}

type structInfo struct {
	schema *hcl.BodySchema
	fields []fieldInfo
	labels []string
}

var structInfos sync.Map // reflect.Type → *structInfo

func infoOf(t reflect.Type) *structInfo {
	if v, ok := structInfos.Load(t); ok {
		return v.(*structInfo)
	}
	info := &structInfo{schema: &hcl.BodySchema{}}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("hcl")
		if !ok {
			continue
		}
		name, opt, _ := strings.Cut(tag, ",")
		switch opt {
		case "", "optional":
			info.schema.Attributes = append(info.schema.Attributes, hcl.AttributeSchema{Name: name, Required: opt == ""})
			info.fields = append(info.fields, fieldInfo{name, i, fieldAttr, opt == ""})
		case "block":
			et := f.Type
			kind := fieldBlock
			if et.Kind() == reflect.Slice {
				kind = fieldBlocks
				et = et.Elem()
			}
			bs := hcl.BlockHeaderSchema{Type: name, LabelNames: infoOf(et.Elem()).labels}
			info.schema.Blocks = append(info.schema.Blocks, bs)
			info.fields = append(info.fields, fieldInfo{name, i, kind, false})
		case "label":
			info.labels = append(info.labels, name)
			info.fields = append(info.fields, fieldInfo{name, i, fieldLabel, false})
		default:
			panic(fmt.Sprintf("config: unsupported hcl tag %q on %s.%s", tag, t, f.Name))
		}
	}
	structInfos.Store(t, info)
	return info
}

// testHookDecodeAttr, when set by a test, runs before each attribute is
// evaluated (to make one panic).
var testHookDecodeAttr func(*hcl.Attribute)

type metaHolder interface{ meta() *rawMeta }

// decodeBody decodes body into the struct ptr points to.
func (d *decoder) decodeBody(body hcl.Body, ptr reflect.Value) {
	sv := ptr.Elem()
	info := infoOf(sv.Type())
	content, diags := body.Content(info.schema)
	d.sink.add(diags...)
	m := ptr.Interface().(metaHolder).meta()
	m.attrs = make([]rawAttr, 0, len(content.Attributes))
	for _, f := range info.fields {
		switch f.kind {
		case fieldAttr:
			if a := content.Attributes[f.name]; a != nil {
				d.decodeAttr(a, sv.Field(f.index), m, f.required)
			}
		case fieldBlock, fieldBlocks:
			blocks := content.Blocks.OfType(f.name)
			if len(blocks) == 0 {
				continue
			}
			fv := sv.Field(f.index)
			if f.kind == fieldBlock {
				scope := "here"
				if _, root := ptr.Interface().(*rawRoot); root {
					scope = "in a configuration" // as mergeRoots says across files
				}
				for _, extra := range blocks[1:] {
					d.sink.add(&hcl.Diagnostic{
						Severity: hcl.DiagError,
						Summary:  fmt.Sprintf("Duplicate %s block", f.name),
						Detail:   fmt.Sprintf("Only one %s block is allowed %s; the first is at %s. Merge the two.", f.name, scope, where(blocks[0].DefRange)),
						Subject:  extra.DefRange.Ptr(),
					})
				}
				fv.Set(d.decodeBlock(blocks[0], fv.Type().Elem()))
				continue
			}
			for _, b := range blocks {
				fv.Set(reflect.Append(fv, d.decodeBlock(b, fv.Type().Elem().Elem())))
			}
		}
	}
}

func (d *decoder) decodeBlock(b *hcl.Block, t reflect.Type) reflect.Value {
	ptr := reflect.New(t)
	m := ptr.Interface().(metaHolder).meta()
	m.defRange = b.DefRange
	info := infoOf(t)
	li := 0
	for _, f := range info.fields {
		if f.kind == fieldLabel && li < len(b.Labels) {
			ptr.Elem().Field(f.index).SetString(b.Labels[li])
			li++
		}
	}
	d.decodeBody(b.Body, ptr)
	return ptr
}

func (d *decoder) decodeAttr(a *hcl.Attribute, fv reflect.Value, m *rawMeta, required bool) {
	d.missing = d.missing[:0]
	d.at = &a.Range
	if testHookDecodeAttr != nil {
		testHookDecodeAttr(a)
	}
	val, diags := a.Expr.Value(d.ctx)
	d.sink.add(diags...)
	ra := rawAttr{name: a.Name, src: d.src, start: posOf(a.Range.Start), value: posOf(a.Expr.Range().Start), end: posOf(a.Expr.Range().End)}
	val, marks := val.UnmarkDeep()
	ra.origin = describeOrigins(marks)
	if d.origin != nil && ra.origin == "" {
		ra.origin = d.origin(a.Range)
	}
	placeholder := func() {
		if !ra.placeholder {
			ra.placeholder = true
			m.placeholders++
		}
	}
	if diags.HasErrors() {
		placeholder()
		m.attrs = append(m.attrs, ra)
		return
	}
	if len(d.missing) > 0 {
		for _, p := range d.missing {
			sev := hcl.DiagWarning
			if d.mode == ModeRuntime || p.always {
				sev = hcl.DiagError
			}
			d.sink.add(&hcl.Diagnostic{Severity: sev, Summary: p.summary, Detail: p.detail, Subject: a.Range.Ptr()})
		}
		placeholder()
	}
	if val.IsNull() {
		if required {
			d.sink.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing required argument",
				Detail:   fmt.Sprintf("The argument %q is required, but null leaves it unset; give it a value.", a.Name),
				Subject:  a.Range.Ptr(),
			})
		}
		return // `x = null` means unset
	}
	ty, err := gocty.ImpliedType(fv.Addr().Interface())
	if err != nil {
		panic(fmt.Sprintf("config: field of attribute %q has no cty type: %v", a.Name, err))
	}
	conv, err := convert.Convert(val, ty)
	if err == nil {
		err = gocty.FromCtyValue(conv, fv.Addr().Interface())
	}
	if err != nil {
		reason := err.Error()
		if ra.origin != "" { // conversion errors may quote the value
			reason = ra.origin + " is not " + article(ty.FriendlyName())
		}
		d.sink.add(&hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Incorrect attribute value type",
			Detail:   fmt.Sprintf("Inappropriate value for attribute %q: %s.", a.Name, reason),
			Subject:  a.Expr.Range().Ptr(),
		})
		placeholder()
	}
	m.attrs = append(m.attrs, ra)
}

// article prefixes a type name with "a" or "an".
func article(s string) string {
	if s != "" && strings.ContainsRune("aeiou", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}

// where renders a range as file:line for the Detail of a diagnostic.
func where(r hcl.Range) string {
	return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line)
}
