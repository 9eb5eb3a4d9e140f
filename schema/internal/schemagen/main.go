// Command schemagen writes openhqm.schema.json and reference.md into the
// current directory from config.RawRoot. It is run by `go generate ./schema`.
package main

import (
	"fmt"
	"os"

	"github.com/openhqm/openhqm/config"
	"github.com/openhqm/openhqm/schema/internal/gen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "schemagen: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	js, md, err := gen.Generate(config.RawRoot())
	if err != nil {
		return err
	}
	if err := os.WriteFile(gen.JSONFile, js, 0o644); err != nil {
		return err
	}
	return os.WriteFile(gen.MarkdownFile, md, 0o644)
}
