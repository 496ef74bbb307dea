package agent

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/clustermgr/clustermgr/pkg/fencing"
)

// TestFence_TokenSurvivesAnAgentRestart: a host that comes back must not
// take orders from a deposed leader (older term) or of an older epoch.
func TestFence_TokenSurvivesAnAgentRestart(t *testing.T) {
	root := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := NewServer("0123456789abcdef-token", nil, logger, root)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "pg1", "data")
	if err := s.fence(dir, fencing.Token{Term: 3, Epoch: 5}); err != nil {
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
	if err := again.fence(dir, fencing.Token{Term: 3, Epoch: 4}); !errors.Is(err, errStaleEpoch) {
		t.Fatalf("epoch 4 after 5 was seen before the restart: %v", err)
	}
	if err := again.fence(dir, fencing.Token{Term: 2, Epoch: 5}); !errors.Is(err, errStaleEpoch) {
		t.Fatalf("term 2 after 3 was seen before the restart: %v", err)
	}
	if err := again.fence(dir, fencing.Token{Term: 3, Epoch: 5}); err != nil {
		t.Fatalf("the same token again: %v", err)
	}
	if err := again.fence(dir, fencing.Token{Term: 4, Epoch: 5}); err != nil {
		t.Fatalf("a new leader resuming the operation: %v", err)
	}
	if err := again.fence(dir, fencing.Token{Term: 3, Epoch: 6}); !errors.Is(err, errStaleEpoch) {
		t.Fatalf("the deposed term-3 leader after term 4 was seen: %v", err)
	}
	third, err := NewServer("0123456789abcdef-token", nil, logger, root)
	if err != nil {
		t.Fatal(err)
	}
	if err := third.fence(dir, fencing.Token{Term: 3, Epoch: 5}); !errors.Is(err, errStaleEpoch) {
		t.Fatalf("term 3 after term 4 was seen before a second restart: %v", err)
	}
	if err := again.fence(filepath.Join(root, "pg2", "data"), fencing.Token{Epoch: 1}); err != nil {
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
	if err := s.fence(filepath.Join(root, "pg1", "data"), fencing.Token{Epoch: 1}); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(root)
	if err != nil || info.Mode().Perm() != 0o755 {
		t.Fatalf("root: %v %v", info, err)
	}
}

// TestFence_ReadsAnEpochOnlyFile: an agent upgraded in place keeps the
// epochs its earlier version recorded.
func TestFence_ReadsAnEpochOnlyFile(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "pg1", "data")
	if err := os.MkdirAll(filepath.Join(root, ".clustermgr-agent"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, ".clustermgr-agent", "epochs.json"), []byte(`{"`+dir+`":7}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := NewServer("0123456789abcdef-token", nil, slog.New(slog.NewTextHandler(io.Discard, nil)), root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.fence(dir, fencing.Token{Term: 9, Epoch: 6}); !errors.Is(err, errStaleEpoch) {
		t.Fatalf("epoch 6 after 7 was recorded: %v", err)
	}
	if err := s.fence(dir, fencing.Token{Term: 9, Epoch: 7}); err != nil {
		t.Fatal(err)
	}
}
