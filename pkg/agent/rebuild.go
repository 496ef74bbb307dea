package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// rebuild replaces a data directory that cannot be rewound with a fresh
// base backup of the primary at Source, keeping the old data until the
// new copy is complete: pg_basebackup writes <data_dir>.rebuild beside it,
// and only then is the old directory moved to <data_dir>.old, the new one
// moved in and the old one removed. The server keeps its own
// configuration files (port, archive, access rules) and becomes a standby
// of Source. It does not start the server.
func (s *Server) rebuild(ctx context.Context, req Request) (Result, error) {
	if req.Source == "" {
		return Result{}, &badRequest{"source (the primary's connection string) is required"}
	}
	if err := s.checkInsideRoots(req.DataDir, "rebuilds"); err != nil {
		return Result{}, err
	}
	staging, old := req.DataDir+".rebuild", req.DataDir+".old"
	// A swap cut short between its two renames left the old data aside:
	// put it back, it is the only copy.
	if _, err := os.Stat(req.DataDir); os.IsNotExist(err) {
		if _, err := os.Stat(old); err == nil {
			if err := os.Rename(old, req.DataDir); err != nil {
				return Result{}, fmt.Errorf("put back %s: %w", old, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(req.DataDir, "PG_VERSION")); err != nil {
		return Result{}, &badRequest{fmt.Sprintf("%s is not a PostgreSQL data directory", req.DataDir)}
	}
	if err := s.stopServer(ctx, req.DataDir, "fast"); err != nil {
		if err := s.stopServer(ctx, req.DataDir, "immediate"); err != nil {
			return Result{}, err
		}
	}
	if err := os.RemoveAll(staging); err != nil {
		return Result{}, fmt.Errorf("remove an earlier %s: %w", staging, err)
	}
	if err := s.makeDataDir(staging); err != nil {
		return Result{}, err
	}
	args := []string{"-D", staging, "-d", req.Source, "-X", "stream", "-c", "fast", "--no-password"}
	if req.PrimarySlotName != "" {
		args = append(args, "-S", req.PrimarySlotName)
	}
	out, err := s.runner.Run(ctx, "pg_basebackup", args...)
	if err != nil {
		_ = os.RemoveAll(staging)
		return Result{}, fmt.Errorf("rebuild %s: base backup (the old data is kept): %w", req.DataDir, err)
	}
	// The base backup carries the primary's configuration files; the
	// node keeps its own.
	if err := copyFiles(req.DataDir, staging, "postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf"); err != nil {
		_ = os.RemoveAll(staging)
		return Result{}, err
	}
	if err := writeAutoConf(filepath.Join(staging, "postgresql.auto.conf"),
		map[string]string{"primary_conninfo": req.Source, "primary_slot_name": req.PrimarySlotName}); err != nil {
		_ = os.RemoveAll(staging)
		return Result{}, err
	}
	sig := filepath.Join(staging, "standby.signal")
	if err := os.WriteFile(sig, nil, 0o600); err != nil {
		_ = os.RemoveAll(staging)
		return Result{}, fmt.Errorf("write standby.signal: %w", err)
	}
	if err := s.runner.Chown(sig); err != nil {
		_ = os.RemoveAll(staging)
		return Result{}, err
	}
	if err := os.RemoveAll(old); err != nil {
		return Result{}, fmt.Errorf("remove an earlier %s: %w", old, err)
	}
	if err := os.Rename(req.DataDir, old); err != nil {
		return Result{}, fmt.Errorf("move the old data aside: %w", err)
	}
	if err := os.Rename(staging, req.DataDir); err != nil {
		return Result{}, errors.Join(fmt.Errorf("move the rebuilt data in: %w", err), os.Rename(old, req.DataDir))
	}
	// Both renames durable before the old data goes.
	if err := syncDir(filepath.Dir(req.DataDir)); err != nil {
		return Result{}, fmt.Errorf("rebuild %s: %w", req.DataDir, err)
	}
	if err := os.RemoveAll(old); err != nil {
		s.log.Warn("remove the replaced data directory", "dir", old, "err", err)
	}
	return s.result(ctx, req.DataDir, out)
}

// checkInsideRoots refuses a data directory that is not strictly below
// one of the configured roots once symlinks are resolved (a link inside a
// root may point anywhere); verb says what the agent would do there.
func (s *Server) checkInsideRoots(dir, verb string) error {
	if len(s.roots) == 0 {
		return &badRequest{"this agent has no data root configured (--data-root): it " + verb + " no data directories"}
	}
	real, err := resolvePath(dir)
	if err != nil {
		return &badRequest{fmt.Sprintf("data_dir %s: %v", dir, err)}
	}
	for _, r := range s.roots {
		root, err := filepath.EvalSymlinks(r)
		if err != nil {
			root = filepath.Clean(r)
		}
		if rel, err := filepath.Rel(root, real); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			// Below the root the path is its own: a symlink there would
			// let one node's directory be another's under a second name.
			if given, err := filepath.Rel(filepath.Clean(r), filepath.Clean(dir)); err != nil || given != rel {
				return &badRequest{fmt.Sprintf("data_dir %s is %s once its symlinks are resolved: name the directory itself, not a link below the data root", dir, real)}
			}
			return nil
		}
	}
	if real != dir {
		return &badRequest{fmt.Sprintf("data_dir %s is %s once its symlinks are resolved, outside the allowed roots %v", dir, real, s.roots)}
	}
	return &badRequest{fmt.Sprintf("data_dir %s is outside the allowed roots %v", dir, s.roots)}
}

// resolvePath resolves the symlinks of the longest part of the clean
// absolute path dir that exists; the rest (not yet created) is kept.
func resolvePath(dir string) (string, error) {
	rest := ""
	p := dir
	for {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(real, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return dir, nil
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}
