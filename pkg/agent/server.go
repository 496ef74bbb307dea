package agent

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/fencing"
	"github.com/clustermgr/clustermgr/pkg/pgctl"
)

// Server is the agent's HTTP API.
type Server struct {
	token  []byte
	runner *pgctl.Runner
	log    *slog.Logger
	mux    *http.ServeMux
	roots  []string // data directories may be created only under these

	mu     sync.Mutex
	epochs map[string]fencing.Token // newest fencing token seen per data directory
	locks  map[string]*sync.Mutex
	leases map[string]*lease // primary leases per data directory
	roles  map[string]role   // declared roles per data directory (role.go)
	// rolesMu orders the writes of roles.json (held without mu).
	rolesMu sync.Mutex
	checks  chan struct{} // bounds the health checks running at once
}

// NewServer returns the agent API. token must be at least 16 characters.
// The agent acts only on data directories below roots (symlinks
// resolved); with none, it acts on none.
func NewServer(token string, runner *pgctl.Runner, logger *slog.Logger, roots ...string) (*Server, error) {
	if len(token) < 16 {
		return nil, errors.New("agent token must be at least 16 characters")
	}
	for _, r := range roots {
		if !filepath.IsAbs(r) {
			return nil, fmt.Errorf("data root %q is not an absolute path", r)
		}
	}
	s := &Server{token: []byte(token), runner: runner, log: logger, roots: roots, epochs: map[string]fencing.Token{}, locks: map[string]*sync.Mutex{}, leases: map[string]*lease{}, roles: map[string]role{}, checks: make(chan struct{}, maxHealthChecks)}
	if err := s.loadEpochs(); err != nil {
		return nil, err
	}
	if err := s.loadRoles(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	for path, h := range map[string]func(context.Context, Request) (Result, error){
		"/v1/agent/status":            s.status,
		"/v1/agent/start":             s.start,
		"/v1/agent/stop":              s.stop,
		"/v1/agent/restart":           s.restart,
		"/v1/agent/promote":           s.promote,
		"/v1/agent/rewind":            s.rewind,
		"/v1/agent/rebuild":           s.rebuild,
		"/v1/agent/configure-standby": s.configureStandby,
		"/v1/agent/initdb":            s.initdb,
		"/v1/agent/basebackup":        s.basebackup,
		"/v1/agent/purge":             s.purge,
		"/v1/agent/backup":            s.backup,
		"/v1/agent/restore":           s.restore,
		"/v1/agent/lease":             s.renewLease,
		"/v1/agent/timeline-history":  s.timelineHistory,
		"/v1/agent/role":              s.declareRole,
		"/v1/agent/check-parameters":  s.checkParametersCommand,
	} {
		mux.Handle("POST "+path, s.command(path, h))
	}
	s.mux = mux
	return s, nil
}

// ServeHTTP authenticates every request, then serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), s.token) != 1 {
		writeProblem(w, http.StatusUnauthorized, "a valid bearer token is required")
		return
	}
	s.mux.ServeHTTP(w, r)
}

func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", api.ProblemContentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail})
}

// longCommandLimit bounds a command that copies or rewrites a whole data
// directory; the manager's context (its leadership) usually ends it first.
const longCommandLimit = 24 * time.Hour

// errStaleEpoch is a command from an older epoch than one already seen.
var errStaleEpoch = errors.New("stale epoch")

type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func (s *Server) command(path string, h func(context.Context, Request) (Result, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req Request
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeProblem(w, http.StatusBadRequest, "malformed request: "+err.Error())
			return
		}
		// A backup and a check of parameters name no data directory:
		// they lock on the root, and read no server's epoch.
		readOnly := path == "/v1/agent/status" || path == "/v1/agent/backup" || path == "/v1/agent/check-parameters"
		if (path == "/v1/agent/backup" || path == "/v1/agent/check-parameters") && req.DataDir == "" {
			req.DataDir = "/"
		}
		if !filepath.IsAbs(req.DataDir) || filepath.Clean(req.DataDir) != req.DataDir {
			writeProblem(w, http.StatusBadRequest, fmt.Sprintf("data_dir %q is not a clean absolute path", req.DataDir))
			return
		}
		// Every command acts only inside the data roots; status of "/"
		// is the managers' ping, and a backup locks on the root.
		if path != "/v1/agent/backup" && path != "/v1/agent/check-parameters" && (path != "/v1/agent/status" || req.DataDir != "/") {
			if err := s.checkInsideRoots(req.DataDir, "acts on"); err != nil {
				writeProblem(w, http.StatusBadRequest, err.Error())
				return
			}
		}
		// A check of parameters touches no data directory: it does not
		// wait behind a backup holding the root.
		if path != "/v1/agent/check-parameters" {
			unlock := s.lock(req.DataDir)
			defer unlock()
		}
		// Status, backup and a check of parameters only read: no epoch
		// applies.
		if !readOnly {
			if err := s.fence(req.DataDir, fencing.Token{Term: req.Term, Epoch: req.Epoch}); err != nil {
				status := http.StatusConflict
				var br *badRequest
				if errors.As(err, &br) {
					status = http.StatusBadRequest
				}
				writeProblem(w, status, err.Error())
				return
			}
		}
		limit := 5 * time.Minute
		if isLong(strings.TrimPrefix(path, "/v1/agent/")) {
			limit = longCommandLimit
		}
		ctx, cancel := context.WithTimeout(r.Context(), limit)
		defer cancel()
		res, err := h(ctx, req)
		if err != nil {
			var br *badRequest
			status := http.StatusInternalServerError
			if errors.As(err, &br) {
				status = http.StatusBadRequest
			}
			level := slog.LevelWarn
			if status == http.StatusBadRequest {
				level = slog.LevelInfo // the caller's to mend (the managers' ping of "/" is one)
			}
			s.log.Log(ctx, level, "agent command failed", "command", path, "data_dir", req.DataDir, "term", req.Term, "epoch", req.Epoch, "status", status, "err", err)
			writeProblem(w, status, err.Error())
			return
		}
		level := slog.LevelInfo
		if path == "/v1/agent/lease" || path == "/v1/agent/role" {
			level = slog.LevelDebug // renewed every few hundred milliseconds
		}
		s.log.Log(ctx, level, "agent command", "command", path, "data_dir", req.DataDir, "term", req.Term, "epoch", req.Epoch)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	})
}

// lock serialises commands on one data directory.
func (s *Server) lock(dataDir string) func() {
	s.mu.Lock()
	l, ok := s.locks[dataDir]
	if !ok {
		l = &sync.Mutex{}
		s.locks[dataDir] = l
	}
	s.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// fence refuses a command whose fencing token is older than the newest
// seen for dataDir (a deposed leader's term, a superseded epoch) and
// records a newer one on disk before the command runs.
func (s *Server) fence(dataDir string, tok fencing.Token) error {
	if tok.Epoch == 0 {
		return &badRequest{"epoch is required"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := s.epochs[dataDir]
	if tok.OlderThan(seen) {
		return fmt.Errorf("%w: command carries %v, but %v has been seen for %s", errStaleEpoch, tok, seen, dataDir)
	}
	next := tok.Join(seen)
	if next == seen {
		return nil
	}
	prev := seen
	s.epochs[dataDir] = next
	if err := s.saveEpochs(); err != nil {
		s.epochs[dataDir] = prev
		return err
	}
	return nil
}

func (s *Server) readStatus(ctx context.Context, dataDir string) (Status, error) {
	st := Status{DataDir: dataDir}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		return st, &badRequest{fmt.Sprintf("%s is not a PostgreSQL data directory", dataDir)}
	}
	st.PID, st.Running = pgctl.PostmasterPID(dataDir)
	if !st.Running {
		st.PID = 0
	}
	_, err := os.Stat(filepath.Join(dataDir, "standby.signal"))
	st.Standby = err == nil
	// A damaged control file is reported, not fatal: such a server can
	// still be stopped, purged or rebuilt.
	if cd, err := s.runner.ReadControlData(ctx, dataDir); err != nil {
		st.ControlError = err.Error()
	} else {
		st.Control = cd
	}
	s.mu.Lock()
	st.EpochSeen, st.TermSeen = s.epochs[dataDir].Epoch, s.epochs[dataDir].Term
	s.mu.Unlock()
	return st, nil
}

func (s *Server) result(ctx context.Context, dataDir, output string) (Result, error) {
	st, err := s.readStatus(ctx, dataDir)
	return Result{Status: st, Output: output}, err
}

func (s *Server) status(ctx context.Context, req Request) (Result, error) {
	return s.result(ctx, req.DataDir, "")
}

func (s *Server) start(ctx context.Context, req Request) (Result, error) {
	if _, err := s.readStatus(ctx, req.DataDir); err != nil {
		return Result{}, err
	}
	if _, alive := pgctl.PostmasterPID(req.DataDir); !alive {
		if err := s.runner.RemoveStaleLocks(ctx, req.DataDir); err != nil {
			return Result{}, err
		}
		if err := s.runner.Start(ctx, req.DataDir); err != nil {
			return Result{}, err
		}
	}
	return s.result(ctx, req.DataDir, "")
}

func (s *Server) stop(ctx context.Context, req Request) (Result, error) {
	if req.UntilCheckpoint {
		if req.Mode != "fast" {
			return Result{}, &badRequest{"until_checkpoint is for a fast stop only"}
		}
		return s.stopUntilCheckpoint(ctx, req.DataDir)
	}
	if err := s.stopServer(ctx, req.DataDir, req.Mode); err != nil {
		return Result{}, err
	}
	return s.result(ctx, req.DataDir, "")
}

// stopUntilCheckpoint asks for a fast shutdown and answers once the
// control file says "shut down": the shutdown checkpoint is written and
// is the last WAL the server will ever write. The control file is read
// directly every 5 ms (no pg_controldata); a server that is already gone,
// or a control file this agent cannot read, falls back to waiting for the
// postmaster to exit.
func (s *Server) stopUntilCheckpoint(ctx context.Context, dataDir string) (Result, error) {
	if _, alive := pgctl.PostmasterPID(dataDir); !alive {
		return s.shutDownResult(ctx, dataDir)
	}
	if _, err := pgctl.ReadControlFile(dataDir); err != nil {
		s.log.Warn("control file unreadable; waiting for the postmaster to exit", "data_dir", dataDir, "err", err)
		if err := s.stopServer(ctx, dataDir, "fast"); err != nil {
			return Result{}, err
		}
		return s.shutDownResult(ctx, dataDir)
	}
	if err := s.runner.RequestStop(ctx, dataDir, "fast"); err != nil {
		return Result{}, err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		pid, alive := pgctl.PostmasterPID(dataDir)
		cd, err := pgctl.ReadControlFile(dataDir)
		if err == nil && cd.ClusterState == "shut down" {
			st := Status{DataDir: dataDir, Running: alive, Control: cd}
			if alive {
				st.PID = pid
			}
			s.mu.Lock()
			st.EpochSeen, st.TermSeen = s.epochs[dataDir].Epoch, s.epochs[dataDir].Term
			s.mu.Unlock()
			return Result{Status: st, Output: "shutdown checkpoint written"}, nil
		}
		if !alive {
			return s.shutDownResult(ctx, dataDir)
		}
		if time.Now().After(deadline) {
			return Result{}, fmt.Errorf("stop PostgreSQL in %s (fast): no shutdown checkpoint after a minute", dataDir)
		}
		select {
		case <-ctx.Done():
			return Result{}, fmt.Errorf("stop PostgreSQL in %s (fast): %w", dataDir, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// shutDownResult is the status of a stopped server, an error unless it
// shut down cleanly: a server that died during its shutdown has no
// shutdown checkpoint, and its control file's checkpoint is not the end of
// its WAL.
func (s *Server) shutDownResult(ctx context.Context, dataDir string) (Result, error) {
	res, err := s.result(ctx, dataDir, "")
	if err != nil {
		return res, err
	}
	if st := res.Status.Control.ClusterState; st != "shut down" {
		return res, fmt.Errorf("the server in %s stopped without a shutdown checkpoint (control file: %q)", dataDir, st)
	}
	return res, nil
}

// stopServer stops with mode fast or immediate, or kills the process group
// (which also works on a server stopped by SIGSTOP) and waits for it to go.
func (s *Server) stopServer(ctx context.Context, dataDir, mode string) error {
	switch mode {
	case "fast", "immediate", "smart":
		return s.runner.Stop(ctx, dataDir, mode)
	case "kill":
		if _, alive := pgctl.PostmasterPID(dataDir); !alive {
			return nil
		}
		// Wait for every process, not just the postmaster: a child still
		// attached to shared memory keeps the server from starting again.
		pids, _ := pgctl.KillAll(dataDir, syscall.SIGKILL)
		for !pgctl.Gone(pids) {
			select {
			case <-ctx.Done():
				return fmt.Errorf("server processes %v still alive after SIGKILL: %w", pids, ctx.Err())
			case <-time.After(5 * time.Millisecond):
			}
		}
		return s.runner.RemoveStaleLocks(ctx, dataDir)
	}
	return &badRequest{fmt.Sprintf("mode %q is not fast, immediate or kill", mode)}
}

func (s *Server) restart(ctx context.Context, req Request) (Result, error) {
	if err := s.stopServer(ctx, req.DataDir, req.Mode); err != nil {
		return Result{}, err
	}
	if err := s.runner.Start(ctx, req.DataDir); err != nil {
		return Result{}, err
	}
	return s.result(ctx, req.DataDir, "")
}

func (s *Server) promote(ctx context.Context, req Request) (Result, error) {
	out, err := s.runner.Run(ctx, "pg_ctl", "promote", "-w", "-t", "60", "-D", req.DataDir)
	if err != nil {
		return Result{}, err
	}
	return s.result(ctx, req.DataDir, out)
}

// rewind stops the server if it runs, rewinds it from the source primary
// and writes standby.signal and primary_conninfo (pg_rewind -R). It does
// not start the server.
func (s *Server) rewind(ctx context.Context, req Request) (Result, error) {
	if req.Source == "" {
		return Result{}, &badRequest{"source (the new primary's connection string) is required"}
	}
	if err := s.stopServer(ctx, req.DataDir, "fast"); err != nil {
		if err := s.stopServer(ctx, req.DataDir, "immediate"); err != nil {
			return Result{}, err
		}
	}
	if err := s.runner.RemoveStaleLocks(ctx, req.DataDir); err != nil {
		return Result{}, err
	}
	// A just-promoted source may not have written a checkpoint on its new
	// timeline yet; pg_rewind reads the timeline from the source's control
	// file and would find nothing to rewind. Only then is one forced: a
	// checkpoint may recycle WAL the rewind needs.
	if err := checkpointIfStale(ctx, req.Source); err != nil {
		return Result{}, err
	}
	// pg_rewind runs crash recovery on an uncleanly stopped target in
	// single-user mode, which cannot run as a standby; outside standby
	// mode that recovery would end with WAL the primary never had. A
	// standby is recovered as a standby instead, then stopped cleanly.
	if err := s.recoverAsStandby(ctx, req.DataDir); err != nil {
		return Result{}, err
	}
	// pg_rewind copies the source's configuration files; this server keeps
	// its own (port, listen addresses, access rules).
	restore, err := preserveFiles(req.DataDir, "postgresql.conf", "postgresql.auto.conf", "pg_hba.conf", "pg_ident.conf")
	if err != nil {
		return Result{}, err
	}
	args := []string{"-D", req.DataDir, "--source-server", req.Source, "-R", "--progress"}
	if hasSetting(req.DataDir, "restore_command") {
		// WAL the target needs that its pg_wal no longer holds comes
		// from the archive.
		args = append(args, "--restore-target-wal")
	}
	out, err := s.runner.Run(ctx, "pg_rewind", args...)
	if rerr := restore(); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return Result{}, fmt.Errorf("rewind %s: %w", req.DataDir, err)
	}
	// The restored postgresql.auto.conf lost what -R wrote: set it again.
	if err := writeAutoConf(filepath.Join(req.DataDir, "postgresql.auto.conf"),
		map[string]string{"primary_conninfo": req.Source, "primary_slot_name": req.PrimarySlotName}); err != nil {
		return Result{}, err
	}
	return s.result(ctx, req.DataDir, out)
}

// configureStandby writes standby.signal and sets primary_conninfo (and
// primary_slot_name) in postgresql.auto.conf. A running server picks the
// settings up on its next start (or reload for primary_conninfo).
func (s *Server) configureStandby(ctx context.Context, req Request) (Result, error) {
	if req.PrimaryConnInfo == "" {
		return Result{}, &badRequest{"primary_conninfo is required"}
	}
	if _, err := s.readStatus(ctx, req.DataDir); err != nil {
		return Result{}, err
	}
	settings := map[string]string{"primary_conninfo": req.PrimaryConnInfo, "primary_slot_name": req.PrimarySlotName}
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
	return s.result(ctx, req.DataDir, "")
}

// checkpointIfStale runs CHECKPOINT on the server at conninfo when its
// control file still names an older timeline than the one it writes.
func checkpointIfStale(ctx context.Context, conninfo string) error {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := pgctl.Connect(cctx, conninfo)
	if err != nil {
		return fmt.Errorf("connect to rewind source: %w", err)
	}
	defer conn.Close(context.Background())
	var stale bool
	err = conn.QueryRow(cctx, `SELECT NOT pg_is_in_recovery() AND (SELECT timeline_id FROM pg_control_checkpoint()) <>
		('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int`).Scan(&stale)
	if err != nil {
		return fmt.Errorf("read timelines of rewind source: %w", err)
	}
	if !stale {
		return nil
	}
	if _, err := conn.Exec(cctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint on rewind source: %w", err)
	}
	return nil
}

// recoverAsStandby starts a standby that did not shut down cleanly and
// stops it in fast mode, so that pg_rewind finds it "shut down in
// recovery" and needs no crash recovery of its own.
func (s *Server) recoverAsStandby(ctx context.Context, dataDir string) error {
	if _, err := os.Stat(filepath.Join(dataDir, "standby.signal")); err != nil {
		return nil
	}
	cd, err := s.runner.ReadControlData(ctx, dataDir)
	if err != nil || cd.ClusterState == "shut down in recovery" || cd.ClusterState == "shut down" {
		return nil
	}
	if err := s.runner.Start(ctx, dataDir); err != nil {
		return fmt.Errorf("recover %s as a standby before rewinding: %w", dataDir, err)
	}
	if err := s.runner.Stop(ctx, dataDir, "fast"); err != nil {
		return fmt.Errorf("stop %s after its recovery as a standby: %w", dataDir, err)
	}
	return nil
}
