package pgctl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ControlData is what pg_controldata reports that the manager uses.
type ControlData struct {
	ClusterState  string `json:"cluster_state"` // "in production", "in archive recovery", "shut down", ...
	Timeline      uint32 `json:"timeline"`      // latest checkpoint's TimeLineID
	CheckpointLSN string `json:"checkpoint_lsn"`
	SystemID      string `json:"system_identifier"`
}

// ReadControlData runs pg_controldata on dataDir.
func (r *Runner) ReadControlData(ctx context.Context, dataDir string) (ControlData, error) {
	out, err := r.Run(ctx, "pg_controldata", "-D", dataDir)
	if err != nil {
		return ControlData{}, err
	}
	var cd ControlData
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.TrimSpace(k) {
		case "Database cluster state":
			cd.ClusterState = v
		case "Latest checkpoint's TimeLineID":
			tl, _ := strconv.ParseUint(v, 10, 32)
			cd.Timeline = uint32(tl)
		case "Latest checkpoint location":
			cd.CheckpointLSN = v
		case "Database system identifier":
			cd.SystemID = v
		}
	}
	return cd, nil
}

// PostmasterPID returns the pid in dataDir/postmaster.pid and whether that
// process is alive and is dataDir's postmaster: a postmaster runs in its
// data directory (PostgreSQL changes to it at start), so a pid whose
// working directory is elsewhere (a stale file whose pid was reused, or a
// file planted to have another process signalled) is not running here.
func PostmasterPID(dataDir string) (int, bool) {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return pid, false
	}
	// A killed postmaster stays a zombie until its parent (init, since
	// pg_ctl has exited) reaps it; it is dead all the same.
	if procState(pid) == 'Z' {
		return pid, false
	}
	if !runsIn(pid, dataDir) {
		return pid, false
	}
	return pid, true
}

// runsIn reports whether process pid's working directory is dir (both
// with symlinks resolved).
func runsIn(pid int, dir string) bool {
	cwd, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "cwd"))
	if err != nil {
		return false
	}
	want, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	return filepath.Clean(cwd) == filepath.Clean(want)
}

// procState returns the state letter of a process from /proc, or 0.
func procState(pid int) byte {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	rest := string(data)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 || fields[0] == "" {
		return 0
	}
	return fields[0][0]
}

// Start starts the server in dataDir with pg_ctl and waits until it accepts
// connections.
func (r *Runner) Start(ctx context.Context, dataDir string) error {
	logFile := filepath.Join(dataDir, "log", "postgresql.log")
	_ = os.MkdirAll(filepath.Dir(logFile), 0o700)
	_ = r.Chown(filepath.Dir(logFile))
	if _, err := r.Run(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", dataDir, "-l", logFile); err != nil {
		return fmt.Errorf("start PostgreSQL in %s: %w", dataDir, err)
	}
	return nil
}

// Stop stops the server in dataDir with mode smart, fast or immediate. A
// server that is not running is not an error.
func (r *Runner) Stop(ctx context.Context, dataDir, mode string) error {
	if _, alive := PostmasterPID(dataDir); !alive {
		return nil
	}
	if err := r.RequestStop(ctx, dataDir, mode); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, alive := PostmasterPID(dataDir); !alive {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stop PostgreSQL in %s (%s): still running after a minute", dataDir, mode)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stop PostgreSQL in %s (%s): %w", dataDir, mode, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stopSignal is the postmaster's shutdown signal for a pg_ctl mode.
func stopSignal(mode string) (syscall.Signal, bool) {
	switch mode {
	case "smart":
		return syscall.SIGTERM, true
	case "fast":
		return syscall.SIGINT, true
	case "immediate":
		return syscall.SIGQUIT, true
	}
	return 0, false
}

// RequestStop asks the server in dataDir to stop with mode smart, fast or
// immediate and returns without waiting: pg_ctl -w looks every 100 ms,
// callers watch the postmaster (or the control file) more often (a
// switchover's write outage includes this wait).
func (r *Runner) RequestStop(ctx context.Context, dataDir, mode string) error {
	// The signal pg_ctl would send, without starting pg_ctl (a fork and
	// exec as the PostgreSQL user inside a switchover's write outage).
	if sig, ok := stopSignal(mode); ok {
		if pid, alive := PostmasterPID(dataDir); !alive {
			return nil
		} else if syscall.Kill(pid, sig) == nil {
			return nil
		}
	}
	if _, err := r.Run(ctx, "pg_ctl", "stop", "-W", "-m", mode, "-D", dataDir); err != nil {
		if _, alive := PostmasterPID(dataDir); !alive {
			return nil
		}
		return fmt.Errorf("stop PostgreSQL in %s (%s): %w", dataDir, mode, err)
	}
	return nil
}

// Kill sends sig to the postmaster of dataDir and to each of its children
// (backends, walsenders, background workers: each runs in a session of its
// own, so a process-group signal would not reach them).
func Kill(dataDir string, sig syscall.Signal) error {
	_, err := KillAll(dataDir, sig)
	return err
}

// KillAll is Kill that also returns the pids it signalled (the postmaster
// last).
func KillAll(dataDir string, sig syscall.Signal) ([]int, error) {
	pid, alive := PostmasterPID(dataDir)
	if !alive {
		return nil, fmt.Errorf("no running postmaster in %s", dataDir)
	}
	// Stop the parent first so that it forks nothing new, and list its
	// children while they are still its own (once it dies they belong to
	// init).
	if sig != syscall.SIGCONT {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			return nil, fmt.Errorf("stop postmaster %d: %w", pid, err)
		}
	}
	pids := children(pid)
	for _, child := range pids {
		_ = syscall.Kill(child, sig)
	}
	if err := syscall.Kill(pid, sig); err != nil && err != syscall.ESRCH {
		return pids, fmt.Errorf("signal %v to postmaster %d: %w", sig, pid, err)
	}
	return append(pids, pid), nil
}

// Gone reports whether no process of pids is alive (zombies count as
// gone).
func Gone(pids []int) bool {
	for _, p := range pids {
		if err := syscall.Kill(p, 0); err == nil && procState(p) != 'Z' {
			return false
		}
	}
	return true
}

// children returns the pids whose parent is pid, read from /proc.
func children(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		cpid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		rest := string(data)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) >= 2 {
			if ppid, err := strconv.Atoi(fields[1]); err == nil && ppid == pid {
				out = append(out, cpid)
			}
		}
	}
	return out
}

// RemoveStaleLocks removes the lock files of a dead server: its
// postmaster.pid and its Unix socket locks, when the process they name is
// dead or a zombie nobody has reaped. PostgreSQL takes a zombie for a
// running server and refuses to start (pg_rewind to recover); zombies
// linger where PID 1 does not reap orphans, as in many containers.
func (r *Runner) RemoveStaleLocks(ctx context.Context, dataDir string) error {
	pid, alive := PostmasterPID(dataDir)
	if alive {
		return nil
	}
	if pid != 0 {
		if err := os.Remove(filepath.Join(dataDir, "postmaster.pid")); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove stale postmaster.pid: %w", err)
		}
	}
	port, err := r.Run(ctx, "postgres", "-D", dataDir, "-C", "port")
	if err != nil {
		return err
	}
	dirs, err := r.Run(ctx, "postgres", "-D", dataDir, "-C", "unix_socket_directories")
	if err != nil {
		return err
	}
	for _, dir := range strings.Split(strings.TrimSpace(dirs), ",") {
		dir = strings.Trim(strings.TrimSpace(dir), `"`)
		if dir == "" || strings.HasPrefix(dir, "@") {
			continue
		}
		sock := filepath.Join(dir, ".s.PGSQL."+strings.TrimSpace(port))
		data, err := os.ReadFile(sock + ".lock")
		if err != nil {
			continue
		}
		line, _, _ := strings.Cut(string(data), "\n")
		owner, err := strconv.Atoi(strings.TrimSpace(line))
		if owner < 0 {
			owner = -owner // a standalone backend writes its pid negated
		}
		if err != nil || owner == 0 {
			continue
		}
		if !Gone([]int{owner}) {
			continue
		}
		_ = os.Remove(sock)
		if err := os.Remove(sock + ".lock"); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove stale socket lock: %w", err)
		}
	}
	return nil
}

// SocketOf returns the Unix socket directory and port that the running
// server of dataDir listens on, from its postmaster.pid (lines 4 and 5);
// ok is false when it has no socket directory.
func SocketOf(dataDir string) (dir string, port int, ok bool) {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return "", 0, false
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) < 5 {
		return "", 0, false
	}
	port, err = strconv.Atoi(strings.TrimSpace(lines[3]))
	dir = strings.TrimSpace(lines[4])
	if err != nil || port <= 0 || dir == "" || !filepath.IsAbs(dir) {
		return "", 0, false
	}
	return dir, port, true
}
