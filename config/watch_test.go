package config

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	validA  = "endpoint \"app\" {\n  url = \"http://127.0.0.1:8080\"\n}\n"
	validB  = "endpoint \"app\" {\n  url = \"http://127.0.0.1:9090\"\n}\n"
	invalid = "endpoint \"app\" {\n  url = \"ftp://nope\"\n}\n"
)

// kubelet reproduces how kubelet updates a ConfigMap volume: it writes a new
// timestamped directory, points ..data_tmp at it, renames that over ..data
// and removes the previous directory. The visible files are symlinks
// name -> ..data/name created on the first update.
type kubelet struct {
	dir  string
	n    int
	prev string
}

func (k *kubelet) update(t *testing.T, files map[string]string) {
	t.Helper()
	k.n++
	ts := fmt.Sprintf("..2026_11_26_10_00_%02d.123456789", k.n)
	if err := os.Mkdir(filepath.Join(k.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(k.dir, ts, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(k.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(k.dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	if k.prev != "" {
		if err := os.RemoveAll(filepath.Join(k.dir, k.prev)); err != nil {
			t.Fatal(err)
		}
	}
	k.prev = ts
}

// startWatcher runs a watcher until the test ends and waits for it.
func startWatcher(t *testing.T, w *Watcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := w.Run(ctx); err != context.Canceled {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func expectTrigger(t *testing.T, w *Watcher, paths []string, within time.Duration) Trigger {
	t.Helper()
	select {
	case tr := <-w.C():
		want, err := SourceDigest(paths)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Digest != want {
			t.Fatalf("trigger digest %s, content digest %s", tr.Digest, want)
		}
		return tr
	case <-time.After(within):
		t.Fatalf("no trigger within %v", within)
	}
	return Trigger{}
}

func expectQuiet(t *testing.T, w *Watcher, d time.Duration) {
	t.Helper()
	select {
	case tr := <-w.C():
		t.Fatalf("unexpected trigger %+v", tr)
	case <-time.After(d):
	}
}

func TestWatcherKubeletSwap(t *testing.T) {
	for _, target := range []string{"directory", "file"} {
		t.Run(target, func(t *testing.T) {
			dir := t.TempDir()
			k := &kubelet{dir: dir}
			k.update(t, map[string]string{"config.hcl": validA})
			paths := []string{dir}
			if target == "file" {
				paths = []string{filepath.Join(dir, "config.hcl")}
			}
			cfg, _, _, err := Load(paths, Options{})
			if err != nil || cfg == nil {
				t.Fatalf("initial load: %v", err)
			}
			w, err := NewWatcher(WatcherOptions{Paths: paths, InitialDigest: cfg.Digest, Poll: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			startWatcher(t, w)
			time.Sleep(100 * time.Millisecond) // let Run arm its watches

			steps := []struct {
				content string
				valid   bool
			}{{validB, true}, {invalid, false}, {validA, true}, {validB, true}, {validA, true}}
			for i, s := range steps {
				start := time.Now()
				k.update(t, map[string]string{"config.hcl": s.content})
				tr := expectTrigger(t, w, paths, 2*time.Second)
				cfg, _, diags, err := Load(paths, Options{})
				if err != nil || (cfg != nil) != s.valid {
					t.Fatalf("step %d: Load = %v, %v, %v; want valid=%v", i, cfg != nil, diags, err, s.valid)
				}
				if cfg != nil && cfg.Digest != tr.Digest {
					t.Fatalf("step %d: loaded digest differs from the trigger's", i)
				}
				t.Logf("step %d: trigger after %v", i, time.Since(start).Round(time.Millisecond))
			}
			// The same content swapped in again, and a chmod, change nothing.
			k.update(t, map[string]string{"config.hcl": validA})
			os.Chmod(filepath.Join(dir, k.prev, "config.hcl"), 0o600)
			expectQuiet(t, w, 700*time.Millisecond)
		})
	}
}

func TestWatcherDebounceKeepsLatest(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.hcl")
	os.WriteFile(p, []byte(validA), 0o644)
	w, _ := NewWatcher(WatcherOptions{Paths: []string{dir}, Poll: time.Hour, Debounce: 200 * time.Millisecond})
	startWatcher(t, w)
	time.Sleep(100 * time.Millisecond)
	// A burst of saves within the debounce window yields one trigger for the last.
	for i := 0; i < 5; i++ {
		os.WriteFile(p, []byte(fmt.Sprintf("%s# save %d\n", validA, i)), 0o644)
		time.Sleep(20 * time.Millisecond)
	}
	expectTrigger(t, w, []string{dir}, 2*time.Second)
	expectQuiet(t, w, 500*time.Millisecond)
}

func TestWatcherRearmsReplacedDirectory(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "conf")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "c.hcl"), []byte(validA), 0o644)
	w, _ := NewWatcher(WatcherOptions{Paths: []string{dir}, Poll: time.Hour, Debounce: 50 * time.Millisecond})
	startWatcher(t, w)
	time.Sleep(100 * time.Millisecond)

	// Replace the watched directory itself.
	if err := os.Rename(dir, filepath.Join(root, "conf.old")); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "c.hcl"), []byte(validB), 0o644)
	expectTrigger(t, w, []string{dir}, 2*time.Second)
	// Edits in the new directory are still seen; the old one is not watched.
	os.WriteFile(filepath.Join(dir, "c.hcl"), []byte(invalid), 0o644)
	expectTrigger(t, w, []string{dir}, 2*time.Second)
	os.WriteFile(filepath.Join(root, "conf.old", "c.hcl"), []byte(validB+"# old\n"), 0o644)
	expectQuiet(t, w, 300*time.Millisecond)
}

func TestWatcherSurvivesMissingConfigAndPolls(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.hcl")
	os.WriteFile(p, []byte(validA), 0o644)
	w, _ := NewWatcher(WatcherOptions{Paths: []string{dir}, Poll: 100 * time.Millisecond})
	w.pollOnly = true
	startWatcher(t, w)
	time.Sleep(50 * time.Millisecond)
	os.Remove(p) // unreadable for a while: logged, not fatal
	time.Sleep(300 * time.Millisecond)
	os.WriteFile(p, []byte(validB), 0o644)
	expectTrigger(t, w, []string{dir}, 2*time.Second)
}

func TestNewWatcherNeedsPaths(t *testing.T) {
	if _, err := NewWatcher(WatcherOptions{}); err != ErrNoPaths {
		t.Fatalf("err = %v, want ErrNoPaths", err)
	}
}

func TestSubPathWarning(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config file.hcl")
	os.WriteFile(file, []byte(validA), 0o644)
	k := &kubelet{dir: filepath.Join(dir, "cm")}
	os.Mkdir(k.dir, 0o755)
	k.update(t, map[string]string{"config.hcl": validA})
	escaped := strings.ReplaceAll(file, " ", `\040`)
	mountinfo := "22 1 0:21 / / rw,relatime - overlay overlay rw\n" +
		"1200 22 253:1 /var/lib/kubelet/pods/x/volume-subpaths/cfg/app/0 " + escaped + " ro,relatime - ext4 /dev/vda1 rw\n"
	tests := []struct {
		name, path, mountinfo string
		want                  string // a substring, or "" for no warning
	}{
		{"subPath file", file, mountinfo, "subPath"},
		{"plain file, not a mount", file, "22 1 0:21 / / rw - overlay overlay rw\n", ""},
		{"directory mount", k.dir, mountinfo, ""},
		{"symlinked file of a directory mount", filepath.Join(k.dir, "config.hcl"), mountinfo, ""},
		{"inside kubelet's data dir", filepath.Join(k.dir, "..data", "config.hcl"), mountinfo, "internal directory"},
		{"no mountinfo", file, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			if tt.mountinfo == "" {
				got = subPathWarning(tt.path, nil)
			} else {
				got = subPathWarning(tt.path, strings.NewReader(tt.mountinfo))
			}
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("subPathWarning(%q) = %q, want it to contain %q", tt.path, got, tt.want)
			}
		})
	}
}
