// Package schema holds the schema of the openhqm configuration as data: a JSON
// Schema (2020-12) of the configuration in HCL's JSON syntax and the Markdown
// reference for humans. Both are generated from the configuration's raw HCL
// types (config.RawRoot) by `go generate ./schema` and committed; a test fails
// when they are stale.
package schema

import _ "embed"

//go:generate go run ./internal/schemagen

// JSON is the JSON Schema of the configuration. Callers must not modify it.
//
//go:embed openhqm.schema.json
var JSON []byte

// Markdown is the configuration reference. Callers must not modify it.
//
//go:embed reference.md
var Markdown []byte
