package config

import (
	_ "embed"
	"fmt"
)

// defaultHCL is the embedded default configuration.
//
//go:embed default.hcl
var defaultHCL []byte

// defaultName is the file name the embedded default's ranges carry.
const defaultName = "<default>"

// Default returns the embedded configuration `openhqm serve` uses when no file
// and no OPENHQM_* variable is given: listen :8000, endpoint "app" at
// http://127.0.0.1:8080, memory queue "default", memory results, submit_api on
// them, route "default" taking every path in auto mode (so `Prefer:
// respond-async` makes a job), and the embedded worker. It is loaded from HCL
// like any file, so it gets the same defaults and checks. Each call returns a
// new value the caller owns; Files is empty.
func Default() *Config {
	cfg, _, diags := parse([]source{{defaultName, defaultHCL}}, Options{Mode: ModeRuntime, LookupEnv: noEnv})
	if diags.HasErrors() {
		// default.hcl ships with the binary and TestDefault loads it.
		panic(fmt.Sprintf("config: the embedded default configuration is invalid: %v", diags))
	}
	cfg.Files = nil
	return cfg
}

// noEnv is the environment of configurations that must not depend on it.
func noEnv(string) (string, bool) { return "", false }
