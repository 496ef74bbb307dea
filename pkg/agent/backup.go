package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// BackupInfo describes a verified base backup.
type BackupInfo struct {
	ID        string        `json:"id"`
	Path      string        `json:"path"`
	SizeBytes int64         `json:"size_bytes"`
	StartLSN  string        `json:"start_lsn"`
	StopLSN   string        `json:"stop_lsn"`
	Timeline  uint32        `json:"timeline"`
	Duration  time.Duration `json:"duration"`
	Verified  bool          `json:"verified"`
}

var backupIDRE = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_.]{0,127}$`)

// backup takes a base backup of the server at Source into
// <first data root>/backups/<BackupID> with pg_basebackup (plain format,
// WAL streamed, a manifest) and verifies it with pg_verifybackup. The
// answer's output holds the BackupInfo as JSON.
func (s *Server) backup(ctx context.Context, req Request) (Result, error) {
	if req.Source == "" {
		return Result{}, &badRequest{"source (the connection string of the server to copy) is required"}
	}
	if !backupIDRE.MatchString(req.BackupID) {
		return Result{}, &badRequest{fmt.Sprintf("backup_id %q is not 1-128 characters of [A-Za-z0-9-_.]", req.BackupID)}
	}
	if len(s.roots) == 0 {
		return Result{}, &badRequest{"this agent has no data root configured (--data-root): it stores no backups"}
	}
	dir := filepath.Join(s.roots[0], "backups", req.BackupID)
	if err := s.checkNewDataDir(dir); err != nil {
		return Result{}, err
	}
	if err := s.makeDataDir(dir); err != nil {
		return Result{}, err
	}
	start := time.Now()
	if _, err := s.runner.Run(ctx, "pg_basebackup", "-D", dir, "-d", req.Source, "-X", "stream", "-c", "fast", "--no-password"); err != nil {
		_ = os.RemoveAll(dir)
		return Result{}, err
	}
	info := BackupInfo{ID: req.BackupID, Path: dir, Duration: time.Since(start)}
	if _, err := s.runner.Run(ctx, "pg_verifybackup", "-q", dir); err != nil {
		return Result{}, fmt.Errorf("verify backup %s: %w", dir, err)
	}
	info.Verified = true
	if err := readManifest(dir, &info); err != nil {
		return Result{}, err
	}
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				info.SizeBytes += fi.Size()
			}
		}
		return nil
	})
	out, err := json.Marshal(info)
	if err != nil {
		return Result{}, err
	}
	return Result{Status: Status{DataDir: dir}, Output: string(out)}, nil
}

// readManifest reads the WAL range of a backup from its backup_manifest.
func readManifest(dir string, info *BackupInfo) error {
	data, err := os.ReadFile(filepath.Join(dir, "backup_manifest"))
	if err != nil {
		return fmt.Errorf("read backup manifest: %w", err)
	}
	var m struct {
		WALRanges []struct {
			Timeline uint32 `json:"Timeline"`
			StartLSN string `json:"Start-LSN"`
			EndLSN   string `json:"End-LSN"`
		} `json:"WAL-Ranges"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("decode backup manifest: %w", err)
	}
	if len(m.WALRanges) == 0 {
		return fmt.Errorf("backup manifest has no WAL range")
	}
	first, last := m.WALRanges[0], m.WALRanges[len(m.WALRanges)-1]
	info.StartLSN, info.StopLSN, info.Timeline = first.StartLSN, last.EndLSN, last.Timeline
	return nil
}
