package agent

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestFence_EpochSurvivesAnAgentRestart: a host that comes back must not
// take orders from the deposed leader's older epoch.
func TestFence_EpochSurvivesAnAgentRestart(t *testing.T) {
	root := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := NewServer("0123456789abcdef-token", nil, logger, root)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "pg1", "data")
	if err := s.fence(dir, 5); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(s.epochFile())
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("epoch file: %v %v", info, err)
	}
	again, err := NewServer("0123456789abcdef-token", nil, logger, root)
	if err != nil {
		t.Fatal(err)
	}
	if err := again.fence(dir, 4); !errors.Is(err, errStaleEpoch) {
		t.Fatalf("epoch 4 after 5 was seen before the restart: %v", err)
	}
	if err := again.fence(dir, 5); err != nil {
		t.Fatalf("the same epoch again: %v", err)
	}
	if err := again.fence(filepath.Join(root, "pg2", "data"), 1); err != nil {
		t.Fatalf("another data directory: %v", err)
	}
}

// TestFence_EpochFileLeavesANewRootOpen: the first epoch may arrive before
// any data directory exists; the root it creates must stay usable by the
// database OS user.
func TestFence_EpochFileLeavesANewRootOpen(t *testing.T) {
	root := filepath.Join(t.TempDir(), "new-root")
	s, err := NewServer("0123456789abcdef-token", nil, slog.New(slog.NewTextHandler(io.Discard, nil)), root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.fence(filepath.Join(root, "pg1", "data"), 1); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(root)
	if err != nil || info.Mode().Perm() != 0o755 {
		t.Fatalf("root: %v %v", info, err)
	}
}
