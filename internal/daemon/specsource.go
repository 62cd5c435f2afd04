package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/spec"
)

// SpecSource holds the spec the daemon enforces: the last one that decoded without errors. A spec broken on
// disk is reported and ignored, so a typo never stops enforcement of the mesh as it was.
type SpecSource struct {
	Path string

	mu      sync.Mutex
	current *spec.Mesh
}

// Current returns the last good spec, or nil before one was loaded.
func (s *SpecSource) Current() *spec.Mesh {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// Set puts m back as the enforced spec (when a reload must be refused for reasons beyond the spec itself).
func (s *SpecSource) Set(m *spec.Mesh) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current = m
}

// Reload reads the spec again. It returns whether the enforced spec changed, and the diagnostics of the
// files on disk (when they have errors, the enforced spec stays as it was).
func (s *SpecSource) Reload() (changed bool, m *spec.Mesh, diags hcl.Diagnostics) {
	m, diags = spec.Load(s.Path)
	if diags.HasErrors() {
		return false, m, diags
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current != nil && s.current.Hash() == m.Hash() {
		return false, m, diags
	}
	s.current = m
	return true, m, diags
}

// FormatDiagnostics renders diagnostics as one line each, "file:line,col: severity: summary: detail", for logs.
func FormatDiagnostics(diags hcl.Diagnostics) []string {
	out := make([]string, 0, len(diags))
	for _, d := range diags {
		pos := ""
		if d.Subject != nil {
			pos = fmt.Sprintf("%s:%d,%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		severity := "error"
		if d.Severity == hcl.DiagWarning {
			severity = "warning"
		}
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s%s: %s: %s", pos, severity, d.Summary, d.Detail)))
	}
	return out
}

// Watch calls onChange (debounced) whenever a file of the spec changes, until ctx is done. It watches the
// directory rather than the files: editors replace files by renaming, and a ConfigMap volume swaps a symlink.
func (s *SpecSource) Watch(ctx context.Context, debounce time.Duration, onChange func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	dir := s.Path
	if fi, err := os.Stat(s.Path); err == nil && !fi.IsDir() {
		dir = filepath.Dir(s.Path)
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return fmt.Errorf("watching %s: %w", dir, err)
	}
	go func() {
		defer w.Close()
		var timer *time.Timer
		var fire <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				if timer != nil {
					timer.Stop()
				}
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if !s.relevant(ev.Name) {
					continue
				}
				if timer == nil {
					timer = time.NewTimer(debounce)
				} else {
					timer.Reset(debounce)
				}
				fire = timer.C
			case <-fire:
				fire = nil
				onChange()
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			}
		}
	}()
	return nil
}

// relevant reports whether a changed path can affect the spec: the spec file itself, a spec file of a spec
// directory (spec.IsSpecFileName: an editor's hidden .#mesh.hcl or .mesh.hcl.swp is not one), or (ConfigMap volumes) the ..data symlink being swapped.
func (s *SpecSource) relevant(name string) bool {
	base := filepath.Base(name)
	if strings.HasPrefix(base, "..") {
		return true
	}
	if fi, err := os.Stat(s.Path); err == nil && !fi.IsDir() {
		return filepath.Clean(name) == filepath.Clean(s.Path)
	}
	return spec.IsSpecFileName(base)
}
