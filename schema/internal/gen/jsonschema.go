package gen

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// SchemaID is the $id of the generated JSON Schema.
const SchemaID = "https://github.com/openhqm/openhqm/schema/openhqm.schema.json"

// JSONSchema returns a JSON Schema (draft 2020-12) of the configuration in
// HCL's JSON syntax (*.hcl.json): a block is an object (a repeated block also
// an array of objects), a labelled block an object keyed by its label, and
// each kind of block is defined once under $defs.
func JSONSchema(root *Block) ([]byte, error) {
	defs := map[string]any{}
	top := blockSchema(root, defs)
	top["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	top["$id"] = SchemaID
	top["title"] = "openhqm configuration"
	top["description"] = "The configuration of openhqm in HCL's JSON syntax (*.hcl.json). " +
		"Generated from the config package by `go generate ./schema`; see reference.md."
	if len(defs) > 0 {
		top["$defs"] = defs
	}
	b, err := json.MarshalIndent(top, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode schema: %w", err)
	}
	return append(b, '\n'), nil
}

func blockSchema(b *Block, defs map[string]any) map[string]any {
	props := map[string]any{}
	var required []string
	for _, a := range b.Attrs {
		s := typeSchema(a.Type)
		s["description"] = a.Doc
		props[a.Name] = s
		if a.Required {
			required = append(required, a.Name)
		}
	}
	for _, n := range b.Blocks {
		name := defName(n.Block.TypeName)
		if _, ok := defs[name]; !ok {
			defs[name] = nil // reserve, so recursion terminates
			defs[name] = blockSchema(n.Block, defs)
		}
		ref := map[string]any{"$ref": "#/$defs/" + name}
		body := ref
		if n.Repeated || len(n.Block.Labels) > 0 {
			body = map[string]any{"anyOf": []any{ref, map[string]any{"type": "array", "items": ref}}}
		}
		// One object level per label: route "orders" {...} is written
		// {"route": {"orders": {...}}}.
		for range n.Block.Labels {
			body = map[string]any{"type": "object", "additionalProperties": body}
		}
		out := map[string]any{"description": n.Doc}
		for k, v := range body {
			out[k] = v
		}
		props[n.Name] = out
		if n.Required {
			required = append(required, n.Name)
		}
	}
	s := map[string]any{
		"type":                 "object",
		"additionalProperties": false,
		"properties":           props,
	}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func typeSchema(t reflect.Type) map[string]any {
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64, reflect.Int32:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": typeSchema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": typeSchema(t.Elem())}
	}
	return map[string]any{}
}
