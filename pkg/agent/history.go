package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/clustermgr/clustermgr/pkg/collector"
)

// maxHistoryFile bounds a timeline history file the agent writes.
const maxHistoryFile = 64 << 10

// timelineHistory writes the timeline history files of req.History that
// the server's pg_wal lacks (an existing file is left as it is). A
// standby promoted after that picks a timeline past theirs.
func (s *Server) timelineHistory(ctx context.Context, req Request) (Result, error) {
	if len(req.History) == 0 {
		return Result{}, &badRequest{"history holds no file"}
	}
	for name, text := range req.History {
		if !collector.IsHistoryFileName(name) {
			return Result{}, &badRequest{fmt.Sprintf("history file name %q is not a timeline history file's (8 hex digits and .history)", name)}
		}
		if len(text) > maxHistoryFile || strings.ContainsRune(text, 0) {
			return Result{}, &badRequest{fmt.Sprintf("history file %s is over %d bytes or holds a NUL", name, maxHistoryFile)}
		}
		if _, err := collector.ParseHistory(text); err != nil {
			return Result{}, &badRequest{fmt.Sprintf("history file %s: %v", name, err)}
		}
	}
	wal := filepath.Join(req.DataDir, "pg_wal")
	if fi, err := os.Stat(wal); err != nil || !fi.IsDir() {
		return Result{}, &badRequest{fmt.Sprintf("%s has no pg_wal directory", req.DataDir)}
	}
	for name, text := range req.History {
		if err := s.writeNew(filepath.Join(wal, name), text); err != nil {
			return Result{}, err
		}
	}
	if d, err := os.Open(wal); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return s.result(ctx, req.DataDir, "")
}

// writeNew writes text to path unless path exists: to a temporary file,
// synced and owned like the data directory, then renamed into place, so a
// failure leaves nothing at path.
func (s *Server) writeNew(path, text string) error {
	if _, err := os.Lstat(path); err == nil {
		return nil
	}
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := f.WriteString(text)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := s.runner.Chown(tmp); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
