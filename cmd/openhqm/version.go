package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// version and commit are set at build time:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD)" ./cmd/openhqm
//
// Without them, the module version and VCS settings recorded by the Go
// toolchain are used.
var (
	version = ""
	commit  = ""
)

// buildVersion returns the version and commit of the running binary.
func buildVersion() (ver, rev string) {
	ver, rev = version, commit
	info, ok := debug.ReadBuildInfo()
	if ver == "" {
		ver = "dev"
		if ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
			ver = info.Main.Version
		}
	}
	if rev == "" && ok {
		var modified bool
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" && modified {
			rev += "-dirty"
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev
}

const versionSynopsis = "version\n\nPrints the version, the commit and the Go version the binary was built with."

// versionMain runs `openhqm version`.
func versionMain(args []string, stdout, stderr io.Writer) int {
	var usage strings.Builder
	fs := newFlagSet("version", versionSynopsis, &usage)
	rest, err := parseInterspersed(fs, args)
	if isHelp(err) {
		io.WriteString(stdout, usage.String())
		return exitOK
	}
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("unexpected argument %q", rest[0])
	}
	if err != nil {
		fmt.Fprintf(stderr, "openhqm version: %v\n", err)
		return exitUsage
	}
	ver, rev := buildVersion()
	fmt.Fprintf(stdout, "openhqm %s\ncommit %s\n%s %s/%s\n", ver, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
