package agent

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clustermgr/clustermgr/pkg/pgctl"
)

// TestRebuild_KeepsTheOldDataWhenTheCopyFails: a rebuild cut short between
// its two renames left the data aside as <dir>.old; the next rebuild puts
// it back first, and when its base backup fails the old data is still in
// place and no half copy is left.
func TestRebuild_KeepsTheOldDataWhenTheCopyFails(t *testing.T) {
	bin := t.TempDir()
	for name, script := range map[string]string{
		"pg_ctl":        "#!/bin/sh\nexit 0\n",
		"pg_basebackup": "#!/bin/sh\necho 'pg_basebackup: error: connection to server failed' >&2\nexit 1\n",
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	runner, err := pgctl.NewRunner(bin, "")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := NewServer("0123456789abcdef-token", runner, slog.New(slog.NewTextHandler(io.Discard, nil)), root)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "pg1", "data")
	if err := os.MkdirAll(dir+".old", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir+".old", "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = s.rebuild(context.Background(), Request{DataDir: dir, Epoch: 2, Source: "host=127.0.0.1 port=1 password='secret'"})
	if err == nil || !strings.Contains(err.Error(), "the old data is kept") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("rebuild with a failing base backup: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "PG_VERSION")); err != nil || string(got) != "15\n" {
		t.Fatalf("the old data is not back in place: %q %v", got, err)
	}
	for _, left := range []string{dir + ".old", dir + ".rebuild"} {
		if _, err := os.Stat(left); !os.IsNotExist(err) {
			t.Fatalf("%s is left behind: %v", left, err)
		}
	}
	if _, err := s.rebuild(context.Background(), Request{DataDir: filepath.Join(t.TempDir(), "data"), Epoch: 2, Source: "host=x"}); err == nil || !strings.Contains(err.Error(), "outside the allowed roots") {
		t.Fatalf("rebuild outside the roots: %v", err)
	}
}
