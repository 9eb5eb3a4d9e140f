// Package config turns openhqm's HCL configuration (or the original
// OpenHQM's OPENHQM_* variables, or the embedded default) into one
// validated, immutable *Config: parse with hclparse, decode into raw structs
// that keep every attribute's range, then build the typed model with
// durations, sizes, URLs, references, regexes, path templates and jq
// already resolved. Every problem in user content is an hcl.Diagnostic
// located at the offending attribute. The package also orders routes
// (Precedence), watches a configuration directory (Watcher) and renders
// diagnostics as text with source snippets, Terraform-shaped JSON or GitHub
// annotations (WriteDiagnostics). It imports nothing else of openhqm.
package config
