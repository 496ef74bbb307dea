package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// checkNewDataDir refuses a data directory outside the configured roots,
// or one that exists and is not empty.
func (s *Server) checkNewDataDir(dir string) error {
	if err := s.checkInsideRoots(dir, "creates"); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err == nil && len(entries) > 0 {
		return &badRequest{fmt.Sprintf("data_dir %s exists and is not empty", dir)}
	}
	return nil
}

// makeDataDir creates dir (and its parent) for the OS user; the parent
// also holds the server's Unix socket.
func (s *Server) makeDataDir(dir string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	if err := s.runner.Chown(parent); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return s.runner.Chown(dir)
}

// checkPort refuses a port out of range or already listened on here.
func checkPort(p int) error {
	if p < 1 || p > 65535 {
		return &badRequest{fmt.Sprintf("port %d is out of range 1-65535", p)}
	}
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
	if err != nil {
		return &badRequest{fmt.Sprintf("port %d is in use on this host: %v", p, err)}
	}
	_ = ln.Close()
	return nil
}

// baseSettings are written to every server the agent creates: what
// replication and the manager rely on, then the caller's parameters. The
// server listens on its node's host alone, and its Unix socket (in the
// data directory's parent, owned by the OS user, not world-writable)
// admits that OS user alone.
func baseSettings(dataDir, listen string, port int, params map[string]string) map[string]string {
	out := map[string]string{
		"port":                         strconv.Itoa(port),
		"listen_addresses":             listen,
		"unix_socket_directories":      filepath.Dir(dataDir),
		"unix_socket_permissions":      "0700",
		"wal_level":                    "replica",
		"hot_standby":                  "on",
		"wal_log_hints":                "on",
		"max_wal_senders":              "10",
		"max_replication_slots":        "10",
		"wal_receiver_timeout":         "1500ms",
		"wal_sender_timeout":           "5s",
		"wal_receiver_status_interval": "1s",
	}
	for k, v := range params {
		out[k] = v
	}
	return out
}

// checkListen refuses a listen address that is not one host name or
// address (listen_addresses is the node's host, never "*" or a list).
func checkListen(v string) error {
	if v == "" {
		return &badRequest{"listen_addresses (the node's host) is required"}
	}
	if len(v) > 253 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") != "" {
		return &badRequest{fmt.Sprintf("listen_addresses %.100q is not one host name or IP address", v)}
	}
	return nil
}

// initdb creates a primary's data directory: data checksums, the
// superuser with its password, the settings, and a pg_hba.conf that
// admits TCP connections from the allowed hosts with scram-sha-256 only
// and Unix-socket connections from the OS user PostgreSQL runs as (peer,
// as the superuser) only. It does not start the server.
func (s *Server) initdb(ctx context.Context, req Request) (Result, error) {
	if err := checkPort(req.Port); err != nil {
		return Result{}, err
	}
	if err := checkListen(req.Listen); err != nil {
		return Result{}, err
	}
	if req.Password == "" {
		return Result{}, &badRequest{"password (the superuser's) is required: a provisioned server takes TCP connections with scram-sha-256 only"}
	}
	if err := s.checkParameters(ctx, req.Parameters); err != nil {
		return Result{}, err
	}
	if err := s.checkNewDataDir(req.DataDir); err != nil {
		return Result{}, err
	}
	if err := s.makeDataDir(req.DataDir); err != nil {
		return Result{}, err
	}
	user := req.Superuser
	if user == "" {
		user = "postgres"
	}
	pw := filepath.Join(filepath.Dir(req.DataDir), ".pwfile-"+filepath.Base(req.DataDir))
	if err := os.WriteFile(pw, []byte(req.Password+"\n"), 0o600); err != nil {
		return Result{}, fmt.Errorf("write password file: %w", err)
	}
	defer os.Remove(pw)
	if err := s.runner.Chown(pw); err != nil {
		return Result{}, err
	}
	args := []string{"-D", req.DataDir, "-U", user, "--data-checksums", "-E", "UTF8", "--locale=C.UTF-8",
		"--pwfile", pw, "--auth-local=peer", "--auth-host=scram-sha-256"}
	out, err := s.runner.Run(ctx, "initdb", args...)
	if err != nil {
		return Result{}, err
	}
	hba, ident, err := accessFiles(user, s.runner.OSUser(), currentUser(), req.AllowHosts)
	if err != nil {
		return Result{}, err
	}
	for name, body := range map[string]string{"pg_hba.conf": hba, "pg_ident.conf": ident} {
		path := filepath.Join(req.DataDir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			return Result{}, fmt.Errorf("write %s: %w", name, err)
		}
		if err := s.runner.Chown(path); err != nil {
			return Result{}, err
		}
	}
	settings := baseSettings(req.DataDir, req.Listen, req.Port, req.Parameters)
	if err := s.archiveSettings(req.Archive, settings); err != nil {
		return Result{}, err
	}
	if err := writeAutoConf(filepath.Join(req.DataDir, "postgresql.auto.conf"), settings); err != nil {
		return Result{}, err
	}
	return s.result(ctx, req.DataDir, out)
}

// archiveDir returns the directory of a shard's WAL archive.
func (s *Server) archiveDir(name string) (string, error) {
	if !backupIDRE.MatchString(name) {
		return "", &badRequest{fmt.Sprintf("archive %q is not 1-128 characters of [A-Za-z0-9-_.]", name)}
	}
	return filepath.Join(s.roots[0], "archive", name), nil
}

// archiveSettings adds WAL archiving into the named archive to settings
// (nothing when name is empty) and creates the archive directory.
func (s *Server) archiveSettings(name string, settings map[string]string) error {
	if name == "" {
		return nil
	}
	dir, err := s.archiveDir(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create archive %s: %w", dir, err)
	}
	if err := s.runner.Chown(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := s.runner.Chown(dir); err != nil {
		return err
	}
	settings["archive_mode"] = "on"
	settings["archive_command"] = archiveCommand(dir)
	settings["restore_command"] = restoreCommand(dir)
	settings["archive_timeout"] = "60s"
	return nil
}

// archiveCommand copies a segment into dir, atomically (a temporary name,
// then a rename). A segment already archived with the same content is
// success: a promoted standby archives again what the old primary had. A
// different one under the same name is an error that leaves the archived
// copy alone (pg_stat_archiver counts it and the shard degrades).
func archiveCommand(dir string) string {
	d := shellQuote(dir)
	return fmt.Sprintf("if test -f %[1]s/%%f; then cmp -s %%p %[1]s/%%f; else cp %%p %[1]s/%%f.tmp && mv %[1]s/%%f.tmp %[1]s/%%f; fi", d)
}

// restoreCommand reads a segment back from dir: standbys that lost their
// upstream and pg_rewind use it. A file that is not there fails in the
// shell itself, without starting cp: a promotion asks for several files
// the archive does not have yet (the next timeline's history, the segment
// being written), each inside a switchover's write outage.
func restoreCommand(dir string) string {
	return fmt.Sprintf("test -f %[1]s/%%f && exec cp %[1]s/%%f %%p", shellQuote(dir))
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// basebackup makes a standby's data directory from the primary at Source
// (pg_basebackup with WAL streaming and the replication slot), with its own
// port and primary_conninfo naming it. It does not start the server.
func (s *Server) basebackup(ctx context.Context, req Request) (Result, error) {
	if err := checkPort(req.Port); err != nil {
		return Result{}, err
	}
	if err := s.checkParameters(ctx, req.Parameters); err != nil {
		return Result{}, err
	}
	if req.Source == "" {
		return Result{}, &badRequest{"source (the primary's connection string) is required"}
	}
	if err := checkListen(req.Listen); err != nil {
		return Result{}, err
	}
	if err := s.checkNewDataDir(req.DataDir); err != nil {
		return Result{}, err
	}
	if err := s.makeDataDir(req.DataDir); err != nil {
		return Result{}, err
	}
	args := []string{"-D", req.DataDir, "-d", req.Source, "-X", "stream", "-c", "fast", "--no-password"}
	if req.PrimarySlotName != "" {
		args = append(args, "-S", req.PrimarySlotName)
	}
	out, err := s.runner.Run(ctx, "pg_basebackup", args...)
	if err != nil {
		_ = os.RemoveAll(req.DataDir)
		return Result{}, err
	}
	settings := baseSettings(req.DataDir, req.Listen, req.Port, req.Parameters)
	conninfo := req.Source
	if req.AppName != "" {
		conninfo += " application_name=" + req.AppName
	}
	settings["primary_conninfo"] = conninfo
	settings["primary_slot_name"] = req.PrimarySlotName
	if err := s.archiveSettings(req.Archive, settings); err != nil {
		return Result{}, err
	}
	if err := writeAutoConf(filepath.Join(req.DataDir, "postgresql.auto.conf"), settings); err != nil {
		return Result{}, err
	}
	sig := filepath.Join(req.DataDir, "standby.signal")
	if err := os.WriteFile(sig, nil, 0o600); err != nil {
		return Result{}, fmt.Errorf("write standby.signal: %w", err)
	}
	if err := s.runner.Chown(sig); err != nil {
		return Result{}, err
	}
	return s.result(ctx, req.DataDir, out)
}

// purge stops the server and removes its data directory (only inside the
// roots).
func (s *Server) purge(ctx context.Context, req Request) (Result, error) {
	if err := s.checkInsideRoots(req.DataDir, "removes"); err != nil {
		return Result{}, err
	}
	// What a rebuild cut short may have left beside it goes too.
	for _, aside := range []string{req.DataDir + ".rebuild", req.DataDir + ".old"} {
		if err := os.RemoveAll(aside); err != nil {
			return Result{}, fmt.Errorf("remove %s: %w", aside, err)
		}
	}
	if _, err := os.Stat(req.DataDir); os.IsNotExist(err) {
		return Result{Status: Status{DataDir: req.DataDir}}, nil
	}
	if err := s.stopServer(ctx, req.DataDir, "fast"); err != nil {
		if err := s.stopServer(ctx, req.DataDir, "kill"); err != nil {
			return Result{}, err
		}
	}
	if err := os.RemoveAll(req.DataDir); err != nil {
		return Result{}, fmt.Errorf("remove %s: %w", req.DataDir, err)
	}
	return Result{Status: Status{DataDir: req.DataDir}, Output: "removed " + req.DataDir}, nil
}

// currentUser is the name of the OS user the agent runs as ("" when it
// cannot be told).
func currentUser() string {
	u, err := user.Current()
	if err != nil {
		return ""
	}
	return u.Username
}
