package config

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// WatcherOptions configure a Watcher.
type WatcherOptions struct {
	// Paths are the configuration paths exactly as given to Load.
	Paths []string
	// InitialDigest is the Config.Digest of the generation already loaded;
	// empty: the content found when Run starts is the baseline.
	InitialDigest string
	// Debounce is how long the directory must stay quiet before its content
	// is compared; default 250ms.
	Debounce time.Duration
	// Poll is the interval of the safety-net comparison that runs even when
	// no event arrives; default 30s.
	Poll time.Duration
	// Logger receives errors and re-arms; nil discards them.
	Logger *slog.Logger
}

// Trigger says that the configuration content changed.
type Trigger struct {
	Digest string    // SourceDigest of the new content; equals the next Load's Config.Digest unless it changes again
	Reason string    // "fsnotify" or "poll"
	At     time.Time // when the change was seen
}

// Watcher notices changes of the configuration files and delivers the latest
// one on C. It watches directories, never files (an editor's or kubelet's
// atomic replace would orphan a file watch), resolves symlinks (so the
// Kubernetes ..data swap is seen), waits for Debounce of quiet, and delivers
// only when the content digest changed: a touch, chmod or identical rewrite
// does nothing. Errors are logged and retried; Run returns only when its
// context ends.
type Watcher struct {
	opts WatcherOptions
	c    chan Trigger
	log  *slog.Logger
	fs   *fsnotify.Watcher
	// armed maps each watched directory to what it was when the watch was
	// added, to notice a directory replaced under the same name.
	armed map[string]os.FileInfo
	last  string
	// pollOnly disables file notifications (tests of the safety net).
	pollOnly bool
}

// ErrNoPaths is returned by NewWatcher without paths.
var ErrNoPaths = errors.New("no configuration path to watch")

// NewWatcher returns a Watcher for opts.Paths. It does not touch the file
// system until Run.
func NewWatcher(opts WatcherOptions) (*Watcher, error) {
	if len(opts.Paths) == 0 {
		return nil, ErrNoPaths
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 250 * time.Millisecond
	}
	if opts.Poll <= 0 {
		opts.Poll = 30 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{opts: opts, c: make(chan Trigger, 1), log: log, armed: map[string]os.FileInfo{}, last: opts.InitialDigest}, nil
}

// C delivers triggers. It holds at most one: an undelivered trigger is
// replaced by a newer one, so a slow reader sees only the latest content.
func (w *Watcher) C() <-chan Trigger { return w.c }

// Run watches until ctx ends and returns ctx's error. Call it once; it owns
// the fsnotify watcher and closes it before returning.
func (w *Watcher) Run(ctx context.Context) error {
	fs, err := fsnotify.NewWatcher()
	if err == nil && w.pollOnly {
		fs.Close()
		fs, err = nil, errors.New("disabled")
	}
	if err != nil {
		// Without inotify the poll still works.
		w.log.Error("config watcher cannot use file notifications; polling only", "err", err)
	} else {
		w.fs = fs
		defer fs.Close()
	}
	if w.last == "" {
		if d, err := SourceDigest(w.opts.Paths); err == nil {
			w.last = d
		} else {
			w.log.Warn("config watcher cannot read the configuration", "err", err)
		}
	}
	w.arm()
	poll := time.NewTicker(w.opts.Poll)
	defer poll.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w.fs != nil {
		events, errs = w.fs.Events, w.fs.Errors
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			debounce.Reset(w.opts.Debounce)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			w.log.Warn("config watcher error", "err", err)
			debounce.Reset(w.opts.Debounce)
		case <-debounce.C:
			w.arm()
			w.compare("fsnotify")
		case <-poll.C:
			w.arm()
			w.compare("poll")
		}
	}
}

// compare delivers a trigger when the content digest differs from the last
// one seen.
func (w *Watcher) compare(reason string) {
	d, err := SourceDigest(w.opts.Paths)
	if err != nil {
		// Mid-swap or deleted: keep the last digest; the next event or poll retries.
		w.log.Warn("config watcher cannot read the configuration", "err", err)
		return
	}
	if d == w.last {
		return
	}
	w.last = d
	t := Trigger{Digest: d, Reason: reason, At: time.Now()}
	select {
	case <-w.c: // drop the undelivered older trigger
	default:
	}
	w.c <- t
}

// dirs returns the directories whose entries decide the configuration: each
// directory path and its parent, each file's directory and, through
// symlinks, the directory a path resolves to.
func (w *Watcher) dirs() []string {
	var out []string
	add := func(d string) {
		if d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	for _, p := range w.opts.Paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		st, err := os.Stat(abs)
		isDir := err == nil && st.IsDir()
		if isDir {
			add(abs)
			// The parent sees the directory itself being replaced or created.
			add(filepath.Dir(abs))
		} else {
			add(filepath.Dir(abs))
		}
		if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
			if isDir {
				add(real)
			} else {
				add(filepath.Dir(real))
			}
		}
	}
	return out
}

// arm makes the watch list match dirs(): it adds missing directories, drops
// stale ones, and re-adds a directory that was replaced (same name, another
// inode), whose old watch would stay on the removed one.
func (w *Watcher) arm() {
	if w.fs == nil {
		return
	}
	want := w.dirs()
	for d := range w.armed {
		if !slices.Contains(want, d) {
			_ = w.fs.Remove(d)
			delete(w.armed, d)
		}
	}
	for _, d := range want {
		st, err := os.Stat(d)
		if err != nil {
			if _, ok := w.armed[d]; ok {
				_ = w.fs.Remove(d)
				delete(w.armed, d)
			}
			continue
		}
		if old, ok := w.armed[d]; ok {
			if os.SameFile(old, st) && slices.Contains(w.fs.WatchList(), d) {
				continue
			}
			_ = w.fs.Remove(d)
			w.log.Info("config watcher re-arming a replaced directory", "dir", d)
		}
		if err := w.fs.Add(d); err != nil {
			w.log.Warn("config watcher cannot watch directory", "dir", d, "err", err)
			delete(w.armed, d)
			continue
		}
		w.armed[d] = st
	}
}

// SubPathWarning returns a warning when path will never see ConfigMap
// updates: a single file bind-mounted into the container (a Kubernetes
// subPath mount, which kubelet never updates), or a path inside kubelet's
// internal timestamped directories (removed at the next update). It returns
// "" when nothing looks wrong or nothing can be told. It reads
// /proc/self/mountinfo.
func SubPathWarning(path string) string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return subPathWarning(path, nil)
	}
	defer f.Close()
	return subPathWarning(path, f)
}

func subPathWarning(path string, mountinfo io.Reader) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	for _, part := range strings.Split(abs, string(filepath.Separator)) {
		if strings.HasPrefix(part, "..") && part != ".." {
			return fmt.Sprintf("configuration path %s points inside kubelet's internal directory %q, which is deleted at the next ConfigMap update; point at the mounted directory (%s) instead", path, part, abs[:strings.Index(abs, part)])
		}
	}
	st, err := os.Lstat(abs)
	if err != nil || !st.Mode().IsRegular() || mountinfo == nil {
		return ""
	}
	sc := bufio.NewScanner(mountinfo)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		if unescapeMount(fields[4]) == abs {
			return fmt.Sprintf("configuration file %s is a single-file mount (Kubernetes subPath); kubelet never updates it, so edits to the ConfigMap are not picked up; mount the ConfigMap as a directory and pass the directory or a file in it", path)
		}
	}
	return ""
}

// unescapeMount decodes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := parseOctal(s[i+1 : i+4]); err == nil {
				b.WriteByte(n)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func parseOctal(s string) (byte, error) {
	if len(s) != 3 {
		return 0, errors.New("short")
	}
	var n int
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, errors.New("not octal")
		}
		n = n*8 + int(c-'0')
	}
	return byte(n), nil
}
