package state

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/meshd-io/meshd/internal/model"
)

// Local is the default Backend: a JSON file on the local disk, written atomically, with a one-generation
// backup (<path>.backup) and an advisory lock file (<path>.lock).
type Local struct {
	path string
}

var _ Backend = (*Local)(nil)

// NewLocal returns a backend storing the state in the file at path.
func NewLocal(path string) *Local { return &Local{path: path} }

// Path is the state file's path.
func (l *Local) Path() string { return l.path }

// BackupPath is the path of the previous generation of the state file.
func (l *Local) BackupPath() string { return l.path + ".backup" }

// LockPath is the path of the lock file.
func (l *Local) LockPath() string { return l.path + ".lock" }

// Read returns the stored state, or state.New("") with Serial 0 when the file does not exist.
func (l *Local) Read(ctx context.Context) (*State, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return New(""), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	return decode(l.path, data)
}

// Decode parses the state format; where names the source in errors (a path, a Secret).
func Decode(where string, data []byte) (*State, error) { return decode(where, data) }

func decode(path string, data []byte) (*State, error) {
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("state file %s is not valid JSON: %w", path, err)
	}
	switch {
	case head.Version == nil:
		return nil, fmt.Errorf("state file %s has no format version; is it a meshd state file?", path)
	case *head.Version > FormatVersion:
		return nil, fmt.Errorf("state file %s has format version %d, newer than the version %d this build of meshd supports; use a newer meshd",
			path, *head.Version, FormatVersion)
	case *head.Version < 1:
		return nil, fmt.Errorf("state file %s has invalid format version %d", path, *head.Version)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	s := New("")
	if err := dec.Decode(s); err != nil {
		return nil, fmt.Errorf("state file %s is corrupt: %w", path, err)
	}
	if s.Members == nil {
		s.Members = map[string]model.Member{}
	}
	if s.Corefiles == nil {
		s.Corefiles = map[string][]string{}
	}
	if err := upgrade(path, data, s); err != nil {
		return nil, err
	}
	s.SortRoutes()
	return s, nil
}

// Encode renders s the way the local backend stores it: indented JSON, map keys sorted, routes sorted by
// (region, route table, destination), a trailing newline. It sorts s.Routes in place.
func Encode(s *State) ([]byte, error) {
	s.SortRoutes()
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// Write stores s atomically: it increments s.Serial, sets s.Lineage when empty and s.Version to
// FormatVersion, keeps the previous file as <path>.backup, and replaces the file by a rename. On error s is
// left as it was (serial, lineage and version restored).
func (l *Local) Write(ctx context.Context, s *State) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	oldSerial, oldLineage, oldVersion := s.Serial, s.Lineage, s.Version
	defer func() {
		if err != nil {
			s.Serial, s.Lineage, s.Version = oldSerial, oldLineage, oldVersion
		}
	}()
	if s.Lineage == "" {
		if s.Lineage, err = NewLineage(); err != nil {
			return err
		}
	}
	s.Serial++
	s.Version = FormatVersion
	data, err := Encode(s)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	dir := filepath.Dir(l.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	prev, err := os.ReadFile(l.path)
	switch {
	case err == nil:
		if err := writeAtomic(l.BackupPath(), prev); err != nil {
			return fmt.Errorf("write state backup: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("write state: read previous state: %w", err)
	}
	if err := writeAtomic(l.path, data); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// writeAtomic replaces path with data (WriteFileAtomic).
func writeAtomic(path string, data []byte) error {
	return WriteFileAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFileAtomic replaces the file at path with what write writes: into a temporary file in the same
// directory, fsync, rename over path, fsync of the directory. The file has mode 0600 whatever the mode of the
// file it replaces (it may hold a state or a plan: what meshd manages, where), and a write that fails leaves
// the previous file as it was, never a truncated one.
func WriteFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// NewLineage returns a random UUID (version 4) string.
func NewLineage() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate lineage: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return strings.Join([]string{h[0:8], h[8:12], h[12:16], h[16:20], h[20:32]}, "-"), nil
}
