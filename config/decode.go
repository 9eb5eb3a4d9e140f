package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
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
	diags   hcl.Diagnostics
	missing []string // sentences about env()/file() misses of the attribute being evaluated
	ctx     *hcl.EvalContext
	dir     string // directory of the file being decoded, for file()
}

func newDecoder(opts Options) *decoder {
	d := &decoder{mode: opts.Mode, lookup: opts.LookupEnv}
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
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam:    &function.Parameter{Name: "default", Type: cty.String},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 2 {
				return cty.NilVal, fmt.Errorf("env takes a variable name and an optional default, got %d arguments", len(args))
			}
			name := args[0].AsString()
			if name == "" {
				return cty.NilVal, fmt.Errorf("the variable name is empty")
			}
			if v, ok := d.lookup(name); ok {
				return cty.StringVal(v), nil
			}
			if len(args) == 2 {
				return args[1], nil
			}
			d.missing = append(d.missing, fmt.Sprintf("The environment variable %q is not set. Set it, or give a default with env(%q, \"default\").", name, name))
			return cty.StringVal(""), nil
		},
	})
}

func (d *decoder) fileFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Returns the contents of a file (relative to the configuration file's directory) without its trailing newline.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if p == "" {
				return cty.NilVal, fmt.Errorf("the path is empty")
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(d.dir, p)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				reason := "does not exist"
				if !os.IsNotExist(err) {
					reason = "cannot be read: " + err.Error()
				}
				d.missing = append(d.missing, fmt.Sprintf("The file %q %s. Mount the secret there, or fix the path (relative paths start at the configuration file's directory).", p, reason))
				return cty.StringVal(""), nil
			}
			s := strings.TrimSuffix(string(b), "\n")
			s = strings.TrimSuffix(s, "\r")
			return cty.StringVal(s), nil
		},
	})
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

type metaHolder interface{ meta() *rawMeta }

// decodeBody decodes body into the struct ptr points to.
func (d *decoder) decodeBody(body hcl.Body, ptr reflect.Value) {
	sv := ptr.Elem()
	info := infoOf(sv.Type())
	content, diags := body.Content(info.schema)
	d.diags = append(d.diags, diags...)
	m := ptr.Interface().(metaHolder).meta()
	m.bodyRange = body.MissingItemRange()
	m.attrs = make(map[string]*hcl.Attribute, len(content.Attributes))
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
			if m.blocks == nil {
				m.blocks = map[string][]*hcl.Block{}
			}
			m.blocks[f.name] = blocks
			fv := sv.Field(f.index)
			if f.kind == fieldBlock {
				for _, extra := range blocks[1:] {
					d.diags = append(d.diags, &hcl.Diagnostic{
						Severity: hcl.DiagError,
						Summary:  fmt.Sprintf("Duplicate %s block", f.name),
						Detail:   fmt.Sprintf("Only one %s block is allowed here; the first is at %s. Merge the two.", f.name, where(blocks[0].DefRange)),
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
	m.labelRanges = b.LabelRanges
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
	val, diags := a.Expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		m.attrs[a.Name] = a
		m.placeholder = setFlag(m.placeholder, a.Name)
		return
	}
	if len(d.missing) > 0 {
		sev, summary := hcl.DiagWarning, "Missing environment variable or file"
		if d.mode == ModeRuntime {
			sev = hcl.DiagError
		}
		for _, msg := range d.missing {
			s := summary
			if strings.HasPrefix(msg, "The environment") {
				s = "Missing environment variable"
			} else if strings.HasPrefix(msg, "The file") {
				s = "Missing file"
			}
			d.diags = append(d.diags, &hcl.Diagnostic{Severity: sev, Summary: s, Detail: msg, Subject: a.Range.Ptr()})
		}
		m.placeholder = setFlag(m.placeholder, a.Name)
	}
	if val.IsNull() {
		if required {
			d.diags = append(d.diags, &hcl.Diagnostic{
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
		d.diags = append(d.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Incorrect attribute value type",
			Detail:   fmt.Sprintf("Inappropriate value for attribute %q: %s.", a.Name, err),
			Subject:  a.Expr.Range().Ptr(),
		})
		m.placeholder = setFlag(m.placeholder, a.Name)
	}
	m.attrs[a.Name] = a
}

func setFlag(m map[string]bool, k string) map[string]bool {
	if m == nil {
		m = map[string]bool{}
	}
	m[k] = true
	return m
}

// where renders a range as file:line for the Detail of a diagnostic.
func where(r hcl.Range) string {
	return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line)
}
