package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/openhqm/openhqm/schema"
)

const schemaSynopsis = `schema [--format json|markdown]

Prints the schema of the configuration embedded in this binary: a JSON Schema
(2020-12) of the configuration in HCL's JSON syntax, usable by editors, or
the Markdown reference of every block and attribute.`

// schemaMain runs `openhqm schema`.
func schemaMain(args []string, stdout, stderr io.Writer) int {
	var usage strings.Builder
	fs := newFlagSet("schema", schemaSynopsis, &usage)
	format := fs.String("format", "json", "output `format`: json or markdown")
	rest, err := parseInterspersed(fs, args)
	if isHelp(err) {
		io.WriteString(stdout, usage.String())
		return exitOK
	}
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("unexpected argument %q", rest[0])
	}
	if err == nil {
		err = oneOf("format", *format, "json", "markdown")
	}
	if err != nil {
		fmt.Fprintf(stderr, "openhqm schema: %v\nRun 'openhqm schema -h' for usage.\n", err)
		return exitUsage
	}
	out := schema.JSON
	if *format == "markdown" {
		out = schema.Markdown
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "openhqm schema: %v\n", err)
		return exitUsage
	}
	return exitOK
}
