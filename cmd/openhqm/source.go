package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/hashicorp/hcl/v2"

	"github.com/openhqm/openhqm/config"
)

// source is where serve and worker take their configuration from. The order,
// first match wins:
//
//  1. -c PATH on the command line;
//  2. $OPENHQM_CONFIG;
//  3. /etc/openhqm, when it exists (a mounted ConfigMap);
//  4. the original OpenHQM's OPENHQM_* variables, when any is set (its
//     Kubernetes manifests configure it that way, and they must keep working
//     with this image, which carries no configuration file);
//  5. the embedded default (config.Default): memory queue, the app on
//     127.0.0.1:8080.
//
// Only a file source can be reloaded; the others are fixed for the life of
// the process.
type source struct {
	kind  string   // "file", "env" or "default"
	paths []string // for kind "file"
}

func resolveSource(flagPath string, lookup func(string) (string, bool)) source {
	if flagPath != "" {
		return source{kind: "file", paths: []string{flagPath}}
	}
	if p, ok := lookup("OPENHQM_CONFIG"); ok && p != "" {
		return source{kind: "file", paths: []string{p}}
	}
	if _, err := statConfig(defaultConfigDir); err == nil {
		return source{kind: "file", paths: []string{defaultConfigDir}}
	}
	if len(originalEnv(lookup)) > 0 {
		return source{kind: "env"}
	}
	return source{kind: "default"}
}

// originalEnv lists the original OpenHQM's variables that are set.
func originalEnv(lookup func(string) (string, bool)) []string {
	var set []string
	for _, name := range config.EnvVars() {
		if v, ok := lookup(name); ok && v != "" {
			set = append(set, name)
		}
	}
	return set
}

func (s source) String() string {
	if s.kind == "file" {
		return fmt.Sprint(s.paths)
	}
	return s.kind
}

// statConfig looks for the default configuration directory; tests replace it.
var statConfig = os.Stat

// errInvalidConfig means the configuration has errors; they are in the
// diagnostics returned with it.
var errInvalidConfig = errors.New("invalid configuration")

// load reads the configuration. A content problem returns errInvalidConfig
// with the diagnostics (and the files to render them); warnings come back
// with a valid configuration too.
func (s source) load(lookup func(string) (string, bool)) (*config.Config, map[string]*hcl.File, hcl.Diagnostics, error) {
	switch s.kind {
	case "env":
		cfg, _, err := config.FromEnv(lookup)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%w: %w", errInvalidConfig, err)
		}
		return cfg, nil, nil, nil
	case "default":
		return config.Default(), nil, nil, nil
	}
	cfg, files, diags, err := config.Load(s.paths, config.Options{Mode: config.ModeRuntime, LookupEnv: lookup})
	if err != nil {
		return nil, nil, nil, err
	}
	if diags.HasErrors() {
		return nil, files, diags, errInvalidConfig
	}
	return cfg, files, diags, nil
}
