// Package gen derives the configuration schema from the raw HCL structs of
// the config package: their `hcl` tags give the language (attributes, blocks,
// labels, which are required) and their `doc` tags the descriptions.
package gen

import (
	"fmt"
	"reflect"
	"strings"
)

// Block describes one kind of block (or the root body).
type Block struct {
	TypeName string   // the Go type, e.g. "rawRoute"
	Labels   []string // label names, e.g. ["name"]
	Attrs    []Attr
	Blocks   []Nested
}

// Attr is an attribute of a block.
type Attr struct {
	Name     string
	Doc      string
	Required bool
	Type     reflect.Type
}

// Nested is a block type allowed inside a block.
type Nested struct {
	Name     string
	Doc      string
	Repeated bool // any number of blocks; else at most one
	Required bool // exactly one (a non-pointer struct field)
	Block    *Block
}

// Describe reflects over root, a pointer to (or value of) a struct with hcl
// tags, and returns the description of its body. It fails on tags or field
// types it does not understand, so a change of the config package cannot
// silently drop something from the schema.
func Describe(root any) (*Block, error) {
	t := reflect.TypeOf(root)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("root is %T, want a struct", root)
	}
	return describe(t, map[reflect.Type]*Block{})
}

func describe(t reflect.Type, seen map[reflect.Type]*Block) (*Block, error) {
	if b, ok := seen[t]; ok {
		return b, nil
	}
	b := &Block{TypeName: t.Name()}
	seen[t] = b
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("hcl")
		if !ok {
			continue
		}
		name, kind, _ := strings.Cut(tag, ",")
		doc := f.Tag.Get("doc")
		switch kind {
		case "label":
			b.Labels = append(b.Labels, name)
		case "", "optional":
			if err := checkAttrType(f.Type); err != nil {
				return nil, fmt.Errorf("%s.%s: %w", t.Name(), f.Name, err)
			}
			if doc == "" {
				return nil, fmt.Errorf("%s.%s: attribute %q has no doc tag", t.Name(), f.Name, name)
			}
			b.Attrs = append(b.Attrs, Attr{Name: name, Doc: doc, Required: kind == "", Type: f.Type})
		case "block":
			n := Nested{Name: name, Doc: doc}
			bt := f.Type
			switch bt.Kind() {
			case reflect.Slice:
				n.Repeated = true
				bt = bt.Elem()
			case reflect.Struct:
				n.Required = true
			}
			if bt.Kind() == reflect.Pointer {
				bt = bt.Elem()
			}
			if bt.Kind() != reflect.Struct {
				return nil, fmt.Errorf("%s.%s: block field of type %s", t.Name(), f.Name, f.Type)
			}
			if doc == "" {
				return nil, fmt.Errorf("%s.%s: block %q has no doc tag", t.Name(), f.Name, name)
			}
			nb, err := describe(bt, seen)
			if err != nil {
				return nil, err
			}
			n.Block = nb
			b.Blocks = append(b.Blocks, n)
		default:
			// Range bookkeeping (def_range, attr_range, remain ...) is not
			// part of the language.
		}
	}
	return b, nil
}

func checkAttrType(t reflect.Type) error {
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Int32, reflect.Float64:
		return nil
	case reflect.Slice:
		return checkAttrType(t.Elem())
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return fmt.Errorf("map key %s", t.Key())
		}
		return checkAttrType(t.Elem())
	}
	return fmt.Errorf("unsupported attribute type %s", t)
}

// hclType names an attribute's type in HCL's terms.
func hclType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "number (whole)"
	case reflect.Float64:
		return "number"
	case reflect.Slice:
		return "list(" + strings.TrimSuffix(hclType(t.Elem()), " (whole)") + ")"
	case reflect.Map:
		return "map(" + strings.TrimSuffix(hclType(t.Elem()), " (whole)") + ")"
	}
	return t.String()
}

// defName turns a raw type name into a schema definition name:
// rawResultsRedis → results_redis, rawSubmitAPI → submit_api.
func defName(typeName string) string {
	s := strings.TrimPrefix(typeName, "raw")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			if i > 0 && s[i-1] >= 'a' && s[i-1] <= 'z' {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Names of the generated files in the schema directory.
const (
	JSONFile     = "openhqm.schema.json"
	MarkdownFile = "reference.md"
)

// Generate returns the JSON Schema and the Markdown reference of root.
func Generate(root any) (jsonSchema, markdown []byte, err error) {
	b, err := Describe(root)
	if err != nil {
		return nil, nil, err
	}
	jsonSchema, err = JSONSchema(b)
	if err != nil {
		return nil, nil, err
	}
	return jsonSchema, Markdown(b), nil
}
