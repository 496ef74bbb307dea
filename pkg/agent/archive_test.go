package agent

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runArchive runs an archive_command as PostgreSQL would, for segment
// name at path, and reports whether it succeeded.
func runArchive(t *testing.T, command, path, name string) bool {
	t.Helper()
	cmd := strings.NewReplacer("%p", path, "%f", name).Replace(command)
	return exec.Command("/bin/sh", "-c", cmd).Run() == nil
}

// TestArchiveCommand_IdempotentForTheSameSegment: a promoted standby
// archives segments the old primary archived already. The same segment is
// success; a different one with the same name is a failure that leaves
// the archived copy alone.
func TestArchiveCommand_IdempotentForTheSameSegment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "archive dir")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	seg := filepath.Join(src, "000000010000000000000003")
	if err := os.WriteFile(seg, []byte("wal one"), 0o600); err != nil {
		t.Fatal(err)
	}
	command := archiveCommand(dir)
	if !runArchive(t, command, seg, filepath.Base(seg)) {
		t.Fatal("first archive of a segment failed")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, filepath.Base(seg))); string(got) != "wal one" {
		t.Fatalf("archived %q", got)
	}
	if !runArchive(t, command, seg, filepath.Base(seg)) {
		t.Fatal("archiving an identical segment again failed")
	}
	other := filepath.Join(src, "other")
	if err := os.WriteFile(other, []byte("wal two"), 0o600); err != nil {
		t.Fatal(err)
	}
	if runArchive(t, command, other, filepath.Base(seg)) {
		t.Fatal("a different segment under an archived name was accepted")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, filepath.Base(seg))); string(got) != "wal one" {
		t.Fatalf("the archived copy changed to %q", got)
	}
	if !runArchive(t, restoreCommand(dir), filepath.Join(src, "restored"), filepath.Base(seg)) {
		t.Fatal("restore_command failed for an archived segment")
	}
	if got, _ := os.ReadFile(filepath.Join(src, "restored")); string(got) != "wal one" {
		t.Fatalf("restore_command brought back %q", got)
	}
	if runArchive(t, restoreCommand(dir), filepath.Join(src, "missing"), "00000002.history") {
		t.Fatal("restore_command succeeded for a file the archive does not have")
	}
	if _, err := os.Stat(filepath.Join(src, "missing")); !os.IsNotExist(err) {
		t.Fatalf("restore_command of a missing file left %s (%v)", filepath.Join(src, "missing"), err)
	}
}

func TestHasSetting(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("postgresql.conf", "#restore_command = 'cp x'\nport = 5432\n")
	write("postgresql.auto.conf", "restore_command = ''\n")
	if hasSetting(dir, "restore_command") {
		t.Fatal("a commented or empty setting counts")
	}
	write("postgresql.auto.conf", "restore_command = 'cp /a/%f %p'\n")
	if !hasSetting(dir, "restore_command") {
		t.Fatal("the setting in postgresql.auto.conf is not seen")
	}
}
