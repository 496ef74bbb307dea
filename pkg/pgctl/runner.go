package pgctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Runner runs PostgreSQL programs from BinDir, as OSUser when the current
// process is root.
type Runner struct {
	BinDir string
	// cred is nil when the programs run as the current user.
	cred *syscall.Credential
	uid  int
	gid  int
	home string
	name string // the OS user's name
}

// FindBinDir returns $PG_BIN when set, else what `pg_config --bindir` says.
func FindBinDir(env func(string) (string, bool)) (string, error) {
	if v, ok := env("PG_BIN"); ok && v != "" {
		return v, nil
	}
	out, err := exec.Command("pg_config", "--bindir").Output()
	if err != nil {
		return "", fmt.Errorf("find PostgreSQL binaries: pg_config --bindir: %w (set PG_BIN)", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// NewRunner returns a runner of the programs in binDir. When the process
// runs as root, the programs run as osUser (default "postgres").
func NewRunner(binDir, osUser string) (*Runner, error) {
	if _, err := os.Stat(filepath.Join(binDir, "pg_ctl")); err != nil {
		return nil, fmt.Errorf("PostgreSQL binaries in %s: %w", binDir, err)
	}
	r := &Runner{BinDir: binDir, uid: os.Getuid(), gid: os.Getgid()}
	if os.Geteuid() != 0 {
		if u, err := user.Current(); err == nil {
			r.name = u.Username
		}
		return r, nil
	}
	if osUser == "" {
		osUser = "postgres"
	}
	u, err := user.Lookup(osUser)
	if err != nil {
		return nil, fmt.Errorf("look up OS user %q to run PostgreSQL as: %w", osUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	r.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	r.uid, r.gid, r.home, r.name = uid, gid, u.HomeDir, u.Username
	return r, nil
}

// OSUser is the name of the OS user the programs run as.
func (r *Runner) OSUser() string { return r.name }

// UID and GID are the ids the programs run as.
func (r *Runner) UID() int { return r.uid }

// GID is the group id the programs run as.
func (r *Runner) GID() int { return r.gid }

// Chown gives path to the OS user the programs run as (no-op when not root).
func (r *Runner) Chown(path string) error {
	if r.cred == nil {
		return nil
	}
	if err := os.Chown(path, r.uid, r.gid); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	return nil
}

// Command returns the command of program with args, set to run as the OS
// user in its own process group.
func (r *Runner) Command(ctx context.Context, program string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(r.BinDir, program), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred, Setpgid: true}
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "PGTZ=UTC"}
	if r.home != "" {
		cmd.Env = append(cmd.Env, "HOME="+r.home)
		cmd.Dir = "/"
	}
	return cmd
}

// Run runs program and returns its combined output; a failure carries the
// output's tail.
func (r *Runner) Run(ctx context.Context, program string, args ...string) (string, error) {
	cmd := r.Command(ctx, program, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		text := strings.TrimSpace(out.String())
		if len(text) > 2000 {
			text = "..." + text[len(text)-2000:]
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), fmt.Errorf("%s %s: %w: %s", program, Redact(strings.Join(args, " ")), err, Redact(text))
		}
		return out.String(), fmt.Errorf("run %s: %w", program, err)
	}
	return out.String(), nil
}
