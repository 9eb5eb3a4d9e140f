package gen

import (
	"bytes"
	"fmt"
	"strings"
)

// Markdown returns the configuration reference: every block with its labels,
// attributes (type, whether required, description) and nested blocks.
func Markdown(root *Block) []byte {
	var b bytes.Buffer
	b.WriteString(`# openhqm configuration reference

<!-- Generated from the config package by "go generate ./schema"; do not edit. -->

A configuration is one HCL file or a directory of them (every ` + "`*.hcl`" + ` and
` + "`*.hcl.json`" + ` file, merged in name order). Values may call ` + "`env(NAME)`" + `,
` + "`env(NAME, DEFAULT)`" + ` and ` + "`file(PATH)`" + `. Durations are strings such as
` + "`\"30s\"`" + ` or ` + "`\"1h30m\"`" + `; sizes are byte counts or strings such as ` + "`\"10MiB\"`" + `.

` + "`file(PATH)`" + ` reads a regular file (or a symlink to one) of at most 64 KiB; a FIFO, a device
or a larger file is an error. What ` + "`env()`" + ` and ` + "`file()`" + ` return is never quoted in a
diagnostic, which names the call instead. A configuration is at most 64 MiB over all its
files, one top-level block (or *.hcl.json file) at most 8 MiB, a value nests at most 100 levels (brackets,
templates and operators each count) and a jq expression is at most 64 KiB; a load reports
at most 100 errors and 100 warnings, and says how many more it left out.
Check a configuration with ` + "`openhqm validate PATH`" + `; print this reference with
` + "`openhqm schema --format markdown`" + ` and the JSON Schema with ` + "`openhqm schema`" + `.

## Top-level blocks

| Block | Description |
|---|---|
`)
	for _, n := range root.Blocks {
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s |\n", blockSyntax(n), anchor(n.Name), cell(n.Doc))
	}
	for _, n := range root.Blocks {
		writeBlock(&b, n, n.Name, 2)
	}
	return b.Bytes()
}

func writeBlock(b *bytes.Buffer, n Nested, path string, level int) {
	fmt.Fprintf(b, "\n%s %s\n\n", strings.Repeat("#", min(level, 6)), path)
	fmt.Fprintf(b, "```hcl\n%s {\n  ...\n}\n```\n\n", blockSyntax(n))
	b.WriteString(n.Doc)
	switch {
	case n.Required:
		b.WriteString(" Required, exactly one.")
	case n.Repeated:
		b.WriteString(" Any number.")
	default:
		b.WriteString(" Optional, at most one.")
	}
	b.WriteString("\n")
	if len(n.Block.Attrs) > 0 {
		b.WriteString("\n| Attribute | Type | Required | Description |\n|---|---|---|---|\n")
		for _, a := range n.Block.Attrs {
			req := "no"
			if a.Required {
				req = "yes"
			}
			fmt.Fprintf(b, "| `%s` | %s | %s | %s |\n", a.Name, hclType(a.Type), req, cell(a.Doc))
		}
	}
	if len(n.Block.Blocks) > 0 {
		b.WriteString("\n| Block | Description |\n|---|---|\n")
		for _, c := range n.Block.Blocks {
			fmt.Fprintf(b, "| [`%s`](#%s) | %s |\n", blockSyntax(c), anchor(path+"."+c.Name), cell(c.Doc))
		}
	}
	for _, c := range n.Block.Blocks {
		writeBlock(b, c, path+"."+c.Name, level+1)
	}
}

// blockSyntax is how a block is opened: route "NAME".
func blockSyntax(n Nested) string {
	s := n.Name
	for _, l := range n.Block.Labels {
		s += fmt.Sprintf(" %q", strings.ToUpper(l))
	}
	return s
}

// anchor is the GitHub heading anchor of a block path such as route.retry.
func anchor(path string) string {
	return strings.ReplaceAll(path, ".", "")
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
