package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/clustermgr/clustermgr/pkg/pgctl"
)

// RestoreInfo is where a restore ended.
type RestoreInfo struct {
	DataDir    string    `json:"data_dir"`
	ReachedLSN string    `json:"reached_lsn"`
	ReachedAt  time.Time `json:"reached_at"` // time of the last replayed transaction
}

// restore builds a new server in DataDir from backup BackupID and the
// shard's WAL archive, recovers up to TargetTime (or the end of the
// archive), promotes it and reports where it ended.
func (s *Server) restore(ctx context.Context, req Request) (Result, error) {
	if err := checkPort(req.Port); err != nil {
		return Result{}, err
	}
	if err := checkListen(req.Listen); err != nil {
		return Result{}, err
	}
	if !backupIDRE.MatchString(req.BackupID) {
		return Result{}, &badRequest{fmt.Sprintf("backup_id %q is not 1-128 characters of [A-Za-z0-9-_.]", req.BackupID)}
	}
	if err := s.checkNewDataDir(req.DataDir); err != nil {
		return Result{}, err
	}
	if err := s.checkParameters(ctx, req.Parameters); err != nil {
		return Result{}, err
	}
	src := filepath.Join(s.roots[0], "backups", req.BackupID)
	if _, err := os.Stat(filepath.Join(src, "backup_label")); err != nil {
		return Result{}, &badRequest{fmt.Sprintf("backup %s is not on this agent (%v)", req.BackupID, err)}
	}
	archive := ""
	if req.Archive != "" {
		a, err := s.archiveDir(req.Archive)
		if err != nil {
			return Result{}, err
		}
		archive = a
	}
	var target time.Time
	if req.TargetTime != "" {
		t, err := time.Parse(time.RFC3339Nano, req.TargetTime)
		if err != nil {
			return Result{}, &badRequest{fmt.Sprintf("target_time %q is not an RFC 3339 time", req.TargetTime)}
		}
		target = t
	}
	if err := s.makeDataDir(req.DataDir); err != nil {
		return Result{}, err
	}
	if err := copyTree(src, req.DataDir, s.runner.UID(), s.runner.GID()); err != nil {
		_ = os.RemoveAll(req.DataDir)
		return Result{}, err
	}
	for _, f := range []string{"standby.signal", "postmaster.pid", "backup_manifest"} {
		_ = os.Remove(filepath.Join(req.DataDir, f))
	}
	settings := baseSettings(req.DataDir, req.Listen, req.Port, req.Parameters)
	settings["primary_conninfo"], settings["primary_slot_name"], settings["archive_mode"] = "", "", "off"
	settings["recovery_target_action"] = "promote"
	if archive != "" {
		settings["restore_command"] = restoreCommand(archive)
	}
	if !target.IsZero() {
		settings["recovery_target_time"] = target.UTC().Format("2006-01-02 15:04:05.999999+00")
	}
	if err := writeAutoConf(filepath.Join(req.DataDir, "postgresql.auto.conf"), settings); err != nil {
		return Result{}, err
	}
	sig := filepath.Join(req.DataDir, "recovery.signal")
	if err := os.WriteFile(sig, nil, 0o600); err != nil {
		return Result{}, fmt.Errorf("write recovery.signal: %w", err)
	}
	if err := s.runner.Chown(sig); err != nil {
		return Result{}, err
	}
	if err := s.runner.Start(ctx, req.DataDir); err != nil {
		return Result{}, s.restoreFailed(ctx, req.DataDir, err)
	}
	info, err := s.waitPromoted(ctx, req.Port, req.DataDir, req.Superuser)
	if err != nil {
		return Result{}, s.restoreFailed(ctx, req.DataDir, err)
	}
	out, err := json.Marshal(info)
	if err != nil {
		return Result{}, err
	}
	return s.result(ctx, req.DataDir, string(out))
}

// waitPromoted waits until the restored server has left recovery and
// reports its WAL position and last replayed transaction time. It asks
// through the Unix socket as the OS user PostgreSQL runs as (the one local
// user a provisioned server admits), as superuser (default postgres).
func (s *Server) waitPromoted(ctx context.Context, port int, dataDir, superuser string) (RestoreInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if superuser == "" {
		superuser = "postgres"
	}
	const q = "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN '' ELSE pg_current_wal_lsn()::text END, " +
		"coalesce(to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '')"
	var err error
	for {
		if _, alive := pgctl.PostmasterPID(dataDir); !alive {
			return RestoreInfo{}, fmt.Errorf("the restored server in %s stopped during recovery", dataDir)
		}
		var row []string
		row, err = s.queryLocal(ctx, dataDir, port, superuser, q)
		if err == nil && len(row) == 3 && row[0] == "f" {
			info := RestoreInfo{DataDir: dataDir, ReachedLSN: row[1]}
			if row[2] != "" {
				if info.ReachedAt, err = time.Parse(time.RFC3339Nano, row[2]); err != nil {
					return RestoreInfo{}, fmt.Errorf("last replayed transaction time %q: %w", row[2], err)
				}
			}
			return info, nil
		}
		select {
		case <-ctx.Done():
			return RestoreInfo{}, fmt.Errorf("restored server in %s did not finish recovery: %w (last error %v)", dataDir, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// queryLocal runs one query of one row on the server of dataDir through
// its Unix socket with psql, as the OS user PostgreSQL runs as, and
// returns the row's fields.
func (s *Server) queryLocal(ctx context.Context, dataDir string, port int, user, query string) ([]string, error) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := s.runner.Command(qctx, "psql", "-X", "-A", "-t", "-q", "-F", "|", "-h", filepath.Dir(dataDir), "-p", strconv.Itoa(port),
		"-U", user, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", query)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("psql: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.Split(strings.TrimSpace(stdout.String()), "|"), nil
}

// restoreFailed stops and removes the server a restore was building (the
// directory was new: nothing of anyone's is lost) and returns err with
// what PostgreSQL logged, so that the cause is seen and a retry can use
// the same directory.
func (s *Server) restoreFailed(ctx context.Context, dataDir string, err error) error {
	said := serverErrors(dataDir)
	_ = s.stopServer(ctx, dataDir, "kill")
	if rerr := os.RemoveAll(dataDir); rerr != nil {
		return fmt.Errorf("%w; PostgreSQL: %s; and %s could not be removed: %v", err, said, dataDir, rerr)
	}
	return fmt.Errorf("%w; PostgreSQL: %s; %s removed", err, said, dataDir)
}

// serverErrors returns the FATAL and PANIC lines (or the last lines) of a
// server's log (log/postgresql.log in its data directory).
func serverErrors(dataDir string) string {
	data, err := os.ReadFile(filepath.Join(dataDir, "log", "postgresql.log"))
	if err != nil {
		return "no server log (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var picked []string
	for _, l := range lines {
		if strings.Contains(l, "FATAL:") || strings.Contains(l, "PANIC:") {
			picked = append(picked, strings.TrimSpace(l))
		}
	}
	if len(picked) == 0 {
		picked = lines[max(len(lines)-3, 0):]
	}
	if len(picked) > 5 {
		picked = picked[len(picked)-5:]
	}
	return strings.Join(picked, " | ")
}

// copyTree copies a directory tree, owned by uid:gid.
func copyTree(src, dst string, uid, gid int) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel != "." {
				if err := os.Mkdir(target, info.Mode().Perm()); err != nil {
					return err
				}
			}
			return os.Chown(target, uid, gid)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, info.Mode().Perm())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		return os.Chown(target, uid, gid)
	})
}
