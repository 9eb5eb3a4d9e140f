package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Limits of what Load reads. A configuration comes from a ConfigMap many
// people can edit and is validated in CI on anyone's pull request, so a
// hostile file must not take the memory of the process that reads it.
const (
	// MaxSecretSize bounds what file() reads: it is for tokens, passwords
	// and keys, which are far smaller.
	MaxSecretSize = 64 << 10
	// MaxConfigSize bounds the configuration files of one Load together;
	// real configurations are kilobytes, and a generated one with 200,000
	// endpoints is about 50 MB.
	MaxConfigSize = 64 << 20
)

// ErrNotRegular is returned for a path that is not a regular file (nor a
// symlink to one): reading a FIFO blocks until a writer comes, and a device
// such as /dev/zero never ends.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is returned for a file above the size limit of its use.
var ErrTooLarge = errors.New("file too large")

// readRegular reads the regular file at path (symlinks are followed, so the
// ..data links of a Kubernetes volume work), refusing anything else and
// anything larger than limit bytes. It never blocks on a FIFO: the file is
// checked before it is opened, opened without blocking, and checked again,
// since the path may have been replaced in between.
func readRegular(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := checkRegular(path, st, limit); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := checkRegular(path, st, limit); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit { // it grew after the check
		return nil, &fs.PathError{Op: "read", Path: path, Err: &tooLargeError{size: -1, limit: limit}}
	}
	return b, nil
}

func checkRegular(path string, st fs.FileInfo, limit int64) error {
	if !st.Mode().IsRegular() {
		return &fs.PathError{Op: "read", Path: path, Err: &notRegularError{kind: fileKind(st.Mode())}}
	}
	if st.Size() > limit {
		return &fs.PathError{Op: "read", Path: path, Err: &tooLargeError{size: st.Size(), limit: limit}}
	}
	return nil
}

// notRegularError is ErrNotRegular with what the file is instead.
type notRegularError struct{ kind string }

func (e *notRegularError) Error() string        { return "not a regular file: it is " + e.kind }
func (e *notRegularError) Is(target error) bool { return target == ErrNotRegular }

// tooLargeError is ErrTooLarge with the sizes; size is -1 when the file grew
// while it was read.
type tooLargeError struct{ size, limit int64 }

func (e *tooLargeError) Error() string {
	if e.size < 0 {
		return "file too large: larger than " + byteSize(e.limit)
	}
	return fmt.Sprintf("file too large: %s, larger than %s", byteSize(e.size), byteSize(e.limit))
}
func (e *tooLargeError) Is(target error) bool { return target == ErrTooLarge }

// fileKind names what a non-regular file is, for error messages.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "an irregular file"
}

// byteSize renders a size in the units the configuration uses.
func byteSize(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		switch {
		case n >= u.size && n%u.size == 0:
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		case n >= u.size:
			return fmt.Sprintf("%.1f %s", float64(n)/float64(u.size), u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
