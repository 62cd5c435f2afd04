package state

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/meshd-io/meshd/internal/model"
)

func sample() *State {
	s := New("tidb")
	s.Members["tidb-1"] = model.Member{Name: "tidb-1", Region: "us-west-1", VPCID: "vpc-1", CIDRs: []string{"10.1.0.0/16"},
		RouteTableIDs: []string{"rtb-1"}, SecurityGroupID: "sg-1"}
	s.AddRoute(RouteRecord{Region: "us-west-2", VPCID: "vpc-2", RouteTableID: "rtb-2", DestinationCIDR: "10.1.0.0/16", PeeringID: "pcx-1"})
	s.AddRoute(RouteRecord{Region: "us-west-1", VPCID: "vpc-1", RouteTableID: "rtb-1", DestinationCIDR: "10.2.0.0/16", PeeringID: "pcx-1"})
	s.SetCorefileZones("tidb-1", []string{"pingcap-2.svc.cluster.local"})
	return s
}

func TestReadMissing(t *testing.T) {
	l := NewLocal(filepath.Join(t.TempDir(), "meshd.tfstate"))
	s, err := l.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Serial != 0 || s.Version != FormatVersion || s.Lineage != "" || s.Members == nil || s.Corefiles == nil {
		t.Fatalf("unexpected empty state %+v", s)
	}
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	l := NewLocal(filepath.Join(t.TempDir(), "state.json"))
	s := sample()
	if err := l.Write(ctx, s); err != nil {
		t.Fatal(err)
	}
	got, err := l.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, got); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
	if got.Serial != 1 {
		t.Errorf("serial = %d, want 1", got.Serial)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(got.Lineage) {
		t.Errorf("lineage %q is not a UUID", got.Lineage)
	}
}

func TestFileFormatStable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := NewLocal(filepath.Join(dir, "a")), NewLocal(filepath.Join(dir, "b"))
	s1, s2 := sample(), sample()
	// Same content, routes added in the opposite order.
	s2.Routes = []RouteRecord{s2.Routes[1], s2.Routes[0]}
	s1.Lineage, s2.Lineage = "l", "l"
	if err := a.Write(ctx, s1); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(ctx, s2); err != nil {
		t.Fatal(err)
	}
	da, _ := os.ReadFile(a.Path())
	db, _ := os.ReadFile(b.Path())
	if string(da) != string(db) {
		t.Fatalf("same state, different files:\n%s\n%s", da, db)
	}
	if !strings.Contains(string(da), "\n  \"serial\": 1,\n") || !strings.HasSuffix(string(da), "}\n") {
		t.Fatalf("state file not indented as expected:\n%s", da)
	}
	// Routes sorted by region first: us-west-1 before us-west-2.
	if i, j := strings.Index(string(da), "us-west-1\",\n      \"vpc_id"), strings.Index(string(da), "us-west-2"); i < 0 || j < 0 || i > j {
		t.Fatalf("routes not sorted by region:\n%s", da)
	}
}

func TestSerialLineageBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l := NewLocal(filepath.Join(dir, "state.json"))
	s := New("m")
	if err := l.Write(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(l.BackupPath()); !os.IsNotExist(err) {
		t.Fatalf("backup after the first write: %v", err)
	}
	lineage := s.Lineage
	first, _ := os.ReadFile(l.Path())

	s2, err := l.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s2.AddRoute(RouteRecord{Region: "r", RouteTableID: "rtb-1", DestinationCIDR: "10.0.0.0/16", PeeringID: "pcx-1"})
	if err := l.Write(ctx, s2); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(l.Path())
	backup, err := os.ReadFile(l.BackupPath())
	if err != nil {
		t.Fatal(err)
	}
	if string(backup) != string(first) {
		t.Fatalf("backup = %s, want the first generation %s", backup, first)
	}
	if err := l.Write(ctx, s2); err != nil {
		t.Fatal(err)
	}
	backup, _ = os.ReadFile(l.BackupPath())
	if string(backup) != string(second) {
		t.Fatalf("backup = %s, want the second generation %s", backup, second)
	}
	got, err := l.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Serial != 3 || got.Lineage != lineage {
		t.Fatalf("serial %d lineage %q, want 3 and %q", got.Serial, got.Lineage, lineage)
	}

	// No temporary files left, every file 0600.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
	}
	if diff := cmp.Diff([]string{"state.json", "state.json.backup"}, names); diff != "" {
		t.Errorf("files in the state directory (-want +got):\n%s", diff)
	}
}

func TestWriteCreatesDirectory(t *testing.T) {
	l := NewLocal(filepath.Join(t.TempDir(), "sub", "dir", "state.json"))
	if err := l.Write(context.Background(), New("m")); err != nil {
		t.Fatal(err)
	}
}

func TestWriteFailureLeavesStateUnchanged(t *testing.T) {
	dir := t.TempDir()
	// The state path is a directory: the rename fails.
	path := filepath.Join(dir, "state.json")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := New("m")
	if err := NewLocal(path).Write(context.Background(), s); err == nil {
		t.Fatal("write over a directory succeeded")
	}
	if s.Serial != 0 || s.Lineage != "" {
		t.Fatalf("failed write changed the state: serial %d lineage %q", s.Serial, s.Lineage)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestReadNewerVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	data, _ := json.Marshal(map[string]any{"version": FormatVersion + 1, "serial": 4})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewLocal(path).Read(context.Background())
	if err == nil {
		t.Fatal("read a newer state version")
	}
	for _, want := range []string{path, "version 2", "version 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestReadCorrupt(t *testing.T) {
	for name, content := range map[string]string{
		"truncated":  `{"version": 1, "serial": `,
		"no version": `{"serial": 3}`,
		"wrong type": `{"version": 1, "serial": "three"}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := NewLocal(path).Read(context.Background())
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v does not name %s", err, path)
			}
		})
	}
}

// TestWriteFileAtomicOverWiderFile: a file replaced by WriteFileAtomic has mode 0600 even when the file it
// replaces was 0644 (a mode given to os.OpenFile applies only to a new file), and a write that fails halfway
// leaves the previous file whole and no temporary file behind.
func TestWriteFileAtomicOverWiderFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mesh.plan")
	if err := os.WriteFile(path, []byte("old plan\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	err := WriteFileAtomic(path, func(w io.Writer) error {
		_, err := io.WriteString(w, "new plan\n")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, "new plan\n", 0o600)

	broken := errors.New("disk full")
	err = WriteFileAtomic(path, func(w io.Writer) error {
		_, _ = io.WriteString(w, "half a pl")
		return broken
	})
	if !errors.Is(err, broken) {
		t.Fatalf("failed write: %v, want %v", err, broken)
	}
	assertFile(t, path, "new plan\n", 0o600)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("files left in the directory: %v", entries)
	}
}

func assertFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != content {
		t.Errorf("%s holds %q, want %q", path, got, content)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != mode {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), mode)
	}
}
