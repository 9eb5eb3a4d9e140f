package process

import (
	"errors"
	"fmt"
	"os"

	"github.com/hashicorp/hcl/v2"

	"github.com/openhqm/openhqm/config"
)

// SourceKind says where a process takes its configuration from.
type SourceKind string

const (
	FromFiles   SourceKind = "file"    // a file or a directory of them
	FromEnv     SourceKind = "env"     // the original OpenHQM's OPENHQM_* variables
	FromDefault SourceKind = "default" // the embedded default configuration
)

// Source is where serve and worker take their configuration from. Only files
// can be reloaded; the others are fixed for the life of the process.
type Source struct {
	Kind  SourceKind
	Paths []string // for FromFiles
}

// ResolveSource picks the source, first match wins:
//
//  1. flagPath (-c PATH on the command line);
//  2. $OPENHQM_CONFIG;
//  3. defaultDir (/etc/openhqm), when it exists: a mounted ConfigMap;
//  4. the original OpenHQM's OPENHQM_* variables, when any is set (its
//     Kubernetes manifests configure it that way, and they must keep working
//     with an image that carries no configuration file);
//  5. the embedded default: a memory queue, the app on 127.0.0.1:8080.
func ResolveSource(flagPath, defaultDir string, lookup func(string) (string, bool)) Source {
	if flagPath != "" {
		return Source{Kind: FromFiles, Paths: []string{flagPath}}
	}
	if p, ok := lookup("OPENHQM_CONFIG"); ok && p != "" {
		return Source{Kind: FromFiles, Paths: []string{p}}
	}
	if _, err := os.Stat(defaultDir); err == nil {
		return Source{Kind: FromFiles, Paths: []string{defaultDir}}
	}
	if len(OriginalEnv(lookup)) > 0 {
		return Source{Kind: FromEnv}
	}
	return Source{Kind: FromDefault}
}

// OriginalEnv lists the original OpenHQM's variables that are set.
func OriginalEnv(lookup func(string) (string, bool)) []string {
	var set []string
	for _, name := range config.EnvVars() {
		if v, ok := lookup(name); ok && v != "" {
			set = append(set, name)
		}
	}
	return set
}

func (s Source) String() string {
	if s.Kind == FromFiles {
		return fmt.Sprint(s.Paths)
	}
	return string(s.Kind)
}

// ErrInvalidConfig means the configuration has errors; a *ConfigError
// carries them.
var ErrInvalidConfig = errors.New("invalid configuration")

// ConfigError is a configuration that does not validate: its diagnostics and
// the files to render them with.
type ConfigError struct {
	Files       map[string]*hcl.File
	Diagnostics hcl.Diagnostics
	Err         error // for a configuration from the environment: the variable's problem
}

func (e *ConfigError) Error() string {
	switch errs := e.Diagnostics.Errs(); {
	case e.Err != nil:
		return fmt.Sprintf("%v: %v", ErrInvalidConfig, e.Err)
	case len(errs) == 1:
		return fmt.Sprintf("%v: %v", ErrInvalidConfig, errs[0])
	case len(errs) > 1:
		return fmt.Sprintf("%v: %v (and %d more)", ErrInvalidConfig, errs[0], len(errs)-1)
	}
	return ErrInvalidConfig.Error()
}

func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// Load reads the configuration. Content problems return a *ConfigError;
// warnings come back with a valid configuration. Any other error is an I/O
// problem (a missing path, say).
func (s Source) Load(lookup func(string) (string, bool)) (*config.Config, hcl.Diagnostics, error) {
	switch s.Kind {
	case FromEnv:
		cfg, _, err := config.FromEnv(lookup)
		if err != nil {
			return nil, nil, &ConfigError{Err: err}
		}
		return cfg, nil, nil
	case FromDefault:
		return config.Default(), nil, nil
	}
	cfg, files, diags, err := config.Load(s.Paths, config.Options{Mode: config.ModeRuntime, LookupEnv: lookup})
	if err != nil {
		return nil, nil, err
	}
	if diags.HasErrors() {
		return nil, nil, &ConfigError{Files: files, Diagnostics: diags}
	}
	return cfg, diags, nil
}
