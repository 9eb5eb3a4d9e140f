package config

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// LoadMode says how strictly references to the environment are treated. (It
// is not called Mode because Mode is a route's sync/async/auto mode.)
type LoadMode int

const (
	// ModeRuntime is for serve and worker: a missing env() variable or file()
	// is an error.
	ModeRuntime LoadMode = iota
	// ModeValidate is for validate: a missing env() variable or file() is a
	// warning (CI has no production secrets).
	ModeValidate
)

// Options tune Load and Parse.
type Options struct {
	Mode      LoadMode
	LookupEnv func(string) (string, bool) // nil: os.LookupEnv

	origin func(hcl.Range) string // see decoder.origin
}

// ErrNoConfigFiles is returned by Load for a directory without *.hcl or
// *.hcl.json files.
var ErrNoConfigFiles = errors.New("no *.hcl or *.hcl.json files")

type source struct {
	name string
	src  []byte
}

// Load reads each path (a file, or a directory meaning every *.hcl and
// *.hcl.json in it, sorted by name, merged). files maps file name to the
// parsed file for rendering diagnostics (hcl.NewDiagnosticTextWriter). err is
// only for I/O and usage problems (missing path, unreadable file, directory
// with no configuration files); problems in content are diagnostics. cfg is
// nil when diags.HasErrors(). Load is safe to call concurrently.
func Load(paths []string, opts Options) (cfg *Config, files map[string]*hcl.File, diags hcl.Diagnostics, err error) {
	if len(paths) == 0 {
		return nil, nil, nil, errors.New("no configuration path given")
	}
	srcs, err := readSources(paths)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, files, diags = parse(srcs, opts)
	return cfg, files, diags, nil
}

// readSources reads what Load would: each file, or each directory's
// configuration files in name order. Symlinks are followed; anything but a
// regular file is refused, and MaxConfigSize bounds the files together.
func readSources(paths []string) ([]source, error) {
	var srcs []source
	var total int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read configuration: %w", err)
		}
		names := []string{p}
		if st.IsDir() {
			if names, err = ConfigFiles(p); err != nil {
				return nil, err
			}
		}
		for _, n := range names {
			b, err := readRegular(n, MaxConfigSize-total)
			if errors.Is(err, ErrTooLarge) && total > 0 {
				return nil, fmt.Errorf("read configuration: %w: the files together are larger than %s", ErrTooLarge, byteSize(MaxConfigSize))
			}
			if err != nil {
				return nil, fmt.Errorf("read configuration: %w", err)
			}
			total += int64(len(b))
			srcs = append(srcs, source{n, b})
		}
	}
	return srcs, nil
}

// SourceDigest returns the digest Load would give the configuration at
// paths (Config.Digest) without parsing it, so a watcher can tell a real
// change from a no-op.
func SourceDigest(paths []string) (string, error) {
	srcs, err := readSources(paths)
	if err != nil {
		return "", err
	}
	return digest(srcs), nil
}

// ConfigFiles lists the configuration files of a directory: every *.hcl and
// *.hcl.json (hidden files excluded), sorted by name, joined with dir.
func ConfigFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read configuration directory: %w", err)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, ".") || !isConfigName(n) {
			continue
		}
		full := filepath.Join(dir, n)
		if st, err := os.Stat(full); err != nil || st.IsDir() {
			continue
		}
		names = append(names, full)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("directory %s: %w", dir, ErrNoConfigFiles)
	}
	sort.Strings(names)
	return names, nil
}

// isJSON reports whether a source is in HCL's JSON syntax.
func isJSON(name string) bool { return strings.HasSuffix(name, ".json") }

func isConfigName(n string) bool {
	return strings.HasSuffix(n, ".hcl") || strings.HasSuffix(n, ".hcl.json")
}

// Parse is Load over in-memory sources (tests, fuzzing); names decide HCL vs
// JSON syntax by suffix (".json" is JSON) and are merged in sorted order.
func Parse(srcs map[string][]byte, opts Options) (*Config, map[string]*hcl.File, hcl.Diagnostics) {
	list := make([]source, 0, len(srcs))
	for n, b := range srcs {
		list = append(list, source{n, b})
	}
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	return parse(list, opts)
}

func parse(srcs []source, opts Options) (cfg *Config, files map[string]*hcl.File, diags hcl.Diagnostics) {
	files = make(map[string]*hcl.File, len(srcs))
	syntax := &diagSink{} // the parsers' findings
	d := newDecoder(opts) // its sink collects the decoder's
	var sink *diagSink    // all of them, once the builder runs
	defer func() {
		// Whatever a hostile file makes hcl, cty or gojq do, loading it must
		// not take the process down: a reload parses in the serving process.
		// (A stack overflow cannot be recovered; MaxNesting prevents it.)
		if r := recover(); r != nil {
			at := hcl.Range{Filename: srcs[0].name, Start: hcl.InitialPos, End: hcl.InitialPos}
			if d.at != nil {
				at = *d.at
			}
			if sink == nil {
				sink = syntax
				sink.absorb(d.sink)
			}
			sink.add(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Internal error",
				Detail:   fmt.Sprintf("openhqm failed while loading this configuration (a panic in %s), near here; nothing of it was applied. Please report it with the configuration.", panicSite()),
				Subject:  &at,
			})
			cfg, diags = nil, sink.result()
		}
	}()
	// Each piece is decoded as soon as it is parsed, so that its syntax tree
	// can be collected before the next is parsed. Syntax errors stop the
	// load after parsing, with only them reported, as the decoder's findings
	// in a broken file are mostly echoes of the break.
	var roots []*rawRoot
	for _, s := range srcs {
		sf := &sourceFile{s.name, s.src, isJSON(s.name)}
		d.dir, d.src = filepath.Dir(s.name), sf
		file, ds := parseSource(s, func(body hcl.Body) {
			if syntax.hasErrors() {
				return
			}
			root := &rawRoot{}
			root.defRange = body.MissingItemRange()
			d.decodeBody(body, reflect.ValueOf(root))
			roots = append(roots, root)
		})
		syntax.add(ds...)
		files[s.name] = file
	}
	if syntax.hasErrors() {
		return nil, files, syntax.result()
	}
	d.at = nil
	sink = syntax
	sink.absorb(d.sink)
	b := &builder{sink: sink, mode: opts.Mode}
	cfg = b.build(mergeRoots(roots, b))
	if sink.hasErrors() {
		return nil, files, sink.result()
	}
	cfg.Digest = digest(srcs)
	for _, s := range srcs {
		cfg.Files = append(cfg.Files, s.name)
	}
	return cfg, files, sink.result()
}

// panicSite names the function a recovered panic started in, for a report
// that helps without quoting the panic's value, which may hold a secret.
func panicSite() string {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	afterPanic := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			afterPanic = true
		case afterPanic && !strings.HasPrefix(f.Function, "runtime."):
			return f.Function
		}
		if !more {
			return "an unknown function"
		}
	}
}

// mergeRoots concatenates the blocks of every file; a singleton block (server,
// results, ...) written in two files is an error citing both.
func mergeRoots(roots []*rawRoot, b *builder) *rawRoot {
	out := &rawRoot{}
	if len(roots) > 0 {
		out.defRange = roots[0].defRange
	}
	single := func(name string, dst any, src any, srcRange hcl.Range, firstRange *hcl.Range) {
		dv, sv := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src)
		if sv.IsNil() {
			return
		}
		if !dv.IsNil() {
			b.errorf(&srcRange, fmt.Sprintf("Duplicate %s block", name),
				"Only one %s block is allowed in a configuration; the first is at %s. Merge the two.", name, where(*firstRange))
			return
		}
		dv.Set(sv)
		*firstRange = srcRange
	}
	var rs [5]hcl.Range
	for _, r := range roots {
		out.Endpoints = append(out.Endpoints, r.Endpoints...)
		out.Queues = append(out.Queues, r.Queues...)
		out.Routes = append(out.Routes, r.Routes...)
		if r.Server != nil {
			single("server", &out.Server, r.Server, r.Server.defRange, &rs[0])
		}
		if r.Results != nil {
			single("results", &out.Results, r.Results, r.Results.defRange, &rs[1])
		}
		if r.SubmitAPI != nil {
			single("submit_api", &out.SubmitAPI, r.SubmitAPI, r.SubmitAPI.defRange, &rs[2])
		}
		if r.Worker != nil {
			single("worker", &out.Worker, r.Worker, r.Worker.defRange, &rs[3])
		}
		if r.Telemetry != nil {
			single("telemetry", &out.Telemetry, r.Telemetry, r.Telemetry.defRange, &rs[4])
		}
	}
	return out
}

// digest is the hex SHA-256 over the names and contents of the sources, in
// load order, each length-prefixed so no two inputs collide.
func digest(srcs []source) string {
	h := sha256.New()
	var n [8]byte
	for _, s := range srcs {
		binary.BigEndian.PutUint64(n[:], uint64(len(s.name)))
		h.Write(n[:])
		h.Write([]byte(s.name))
		binary.BigEndian.PutUint64(n[:], uint64(len(s.src)))
		h.Write(n[:])
		h.Write(s.src)
	}
	return hex.EncodeToString(h.Sum(nil))
}
