package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clustermgr/clustermgr/pkg/pgctl"
)

// Health checks for load balancers, with Patroni's paths and meanings so
// that an HAProxy configuration written for Patroni carries over: 200
// when the node is what the path asks, 503 when it is not (and 404 for a
// node the agent does not know, 400 for a malformed query). They are
// answered from the agent's own facts — its server, read at each check
// through the Unix socket, and the leader's declarations and lease — so
// they keep answering while the manager group has no leader.
//
// primary answers 200 only for a server that accepts writes, that the
// leader declared primary at the newest epoch this agent has seen for it,
// and whose lease has not run out — or, run out, whose last check found
// enough standbys taking its WAL (a group with no leader leaves a healthy
// primary serving). A failover promotes no standby before the old
// primary's lease has run out and its agent has fenced it (ha.FencedBy),
// so two nodes never both answer 200: a primary that thaws after a
// freeze answers 503 (its lease ran out long ago) until its agent kills
// it.

// Check names (paths) and their aliases.
const (
	CheckPrimary  = "primary"
	CheckReplica  = "replica"
	CheckReadOnly = "read-only"
	CheckSync     = "sync"
	CheckAsync    = "async"
	CheckHealth   = "health"
	CheckLiveness = "liveness"
)

// checkOf returns the check a path names (Patroni's aliases included).
func checkOf(path string) (string, bool) {
	switch strings.Trim(path, "/") {
	case "primary", "master", "leader", "read-write":
		return CheckPrimary, true
	case "replica":
		return CheckReplica, true
	case "read-only", "readiness":
		return CheckReadOnly, true
	case "sync", "synchronous":
		return CheckSync, true
	case "async", "asynchronous":
		return CheckAsync, true
	case "health":
		return CheckHealth, true
	case "liveness":
		return CheckLiveness, true
	}
	return "", false
}

const (
	maxHealthChecks = 16
	// healthBudget bounds one check (connect and read).
	healthBudget = time.Second
	// servedFor is how long after a check found enough standbys taking
	// an expired lease's WAL the primary check still answers 200; the
	// agent checks every leaseCheckInterval.
	servedFor = time.Second
)

// HealthAnswer is the JSON body of every health check answer.
type HealthAnswer struct {
	Check string `json:"check"`
	OK    bool   `json:"ok"`
	// Reason says why the node is not what the check asks.
	Reason string `json:"reason,omitempty"`
	Node   string `json:"node,omitempty"`
	// State is running, stopped or unreachable (the server does not
	// answer).
	State string `json:"state"`
	// Role is what the server is now: primary (accepts writes) or
	// replica (in recovery).
	Role string `json:"role,omitempty"`
	// Declared is what the manager leader declared it, at Epoch.
	Declared    string   `json:"declared,omitempty"`
	Epoch       uint64   `json:"epoch,omitempty"`
	Sync        bool     `json:"sync,omitempty"`
	Maintenance bool     `json:"maintenance,omitempty"`
	Streaming   bool     `json:"streaming,omitempty"`
	LagBytes    *int64   `json:"lag_bytes,omitempty"`
	LagSeconds  *float64 `json:"lag_seconds,omitempty"`
}

// HealthHandler serves the health checks (GET, HEAD and OPTIONS), with
// no authentication: they tell a node's role and lag, nothing else.
// Query: node= (cluster.shard.node, or a node name this agent knows once;
// optional when it knows one node), lag= (replica, read-only, sync,
// async: a byte count such as 16MB, or a duration such as 10s).
func (s *Server) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			w.Header().Set("Allow", "GET, HEAD, OPTIONS")
			writeProblem(w, http.StatusMethodNotAllowed, "health checks answer GET, HEAD and OPTIONS")
			return
		}
		check, ok := checkOf(r.URL.Path)
		if !ok {
			writeProblem(w, http.StatusNotFound, fmt.Sprintf("no health check %q; the checks are primary, replica, read-only, sync, async, health and liveness", r.URL.Path))
			return
		}
		ans := HealthAnswer{Check: check, State: "running", OK: true}
		if check == CheckLiveness {
			writeHealth(w, r, http.StatusOK, ans)
			return
		}
		q := r.URL.Query()
		lag, err := parseLag(q.Get("lag"))
		if err != nil {
			writeProblem(w, http.StatusBadRequest, err.Error())
			return
		}
		dir, decl, err := s.roleOf(q.Get("node"))
		if err != nil {
			writeProblem(w, http.StatusNotFound, err.Error())
			return
		}
		select {
		case s.checks <- struct{}{}:
			defer func() { <-s.checks }()
		default:
			ans.OK, ans.State, ans.Reason = false, "unknown", "too many health checks at once"
			writeHealth(w, r, http.StatusServiceUnavailable, ans)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), healthBudget)
		defer cancel()
		f, err := readFacts(ctx, dir, decl)
		ans = s.judge(check, dir, decl, f, err, lag, time.Now())
		status := http.StatusOK
		if !ans.OK {
			status = http.StatusServiceUnavailable
		}
		writeHealth(w, r, status, ans)
	})
}

func writeHealth(w http.ResponseWriter, r *http.Request, status int, ans HealthAnswer) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_ = json.NewEncoder(w).Encode(ans)
	}
}

// maxLag is a replica's allowed lag: bytes, or time (0: any).
type maxLag struct {
	bytes int64
	time  time.Duration
}

// parseLag reads lag=: a byte count with an optional unit (B, kB, MB,
// GB, TB; 1024-based, as PostgreSQL's), or a Go duration.
func parseLag(v string) (maxLag, error) {
	if v == "" {
		return maxLag{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return maxLag{time: d}, nil
	}
	num := strings.TrimRight(v, "kKMGTBb")
	unit := v[len(num):]
	n, err := strconv.ParseInt(num, 10, 64)
	mult := map[string]int64{"": 1, "B": 1, "kB": 1 << 10, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[unit]
	if err != nil || n <= 0 || mult == 0 || n > (1<<62)/mult {
		return maxLag{}, fmt.Errorf("lag %.40q is not a byte count (16MB) or a duration (10s)", v)
	}
	return maxLag{bytes: n * mult}, nil
}

// facts are what a check reads from the server.
type facts struct {
	inRecovery, streaming bool
	lagBytes              int64
	lagSeconds            float64
}

// readFacts reads the server in dir through its Unix socket: as the
// declaration's connection string says, or as its user alone (peer) when
// the agent restarted since.
func readFacts(ctx context.Context, dir string, decl role) (facts, error) {
	var f facts
	if _, alive := pgctl.PostmasterPID(dir); !alive {
		return f, errStopped
	}
	conn, err := connectSocket(ctx, dir, decl)
	if err != nil {
		return f, err
	}
	defer conn.Close(context.Background())
	// The WAL receiver's latest_end_lsn is the end of the primary's WAL
	// as of its last message: the lag is what is yet to be replayed.
	err = conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), COALESCE(r.status = 'streaming', false),
	  CASE WHEN pg_is_in_recovery() THEN GREATEST(COALESCE(pg_wal_lsn_diff(r.latest_end_lsn, pg_last_wal_replay_lsn()), 0), 0)::bigint ELSE 0 END,
	  CASE WHEN pg_is_in_recovery() AND COALESCE(pg_wal_lsn_diff(r.latest_end_lsn, pg_last_wal_replay_lsn()), 0) > 0
	    THEN GREATEST(COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0), 0)::float8 ELSE 0 END
	  FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver r ON true`).Scan(&f.inRecovery, &f.streaming, &f.lagBytes, &f.lagSeconds)
	return f, err
}

var errStopped = errors.New("the server is not running")

func connectSocket(ctx context.Context, dir string, decl role) (*pgx.Conn, error) {
	sock, port, ok := pgctl.SocketOf(dir)
	if !ok {
		return nil, errors.New("the server has no Unix socket")
	}
	conninfo := decl.conninfo
	if conninfo == "" {
		if decl.User == "" {
			return nil, errors.New("no manager has told this agent how to connect since it started")
		}
		conninfo = "dbname=postgres user=" + quoteConnValue(decl.User)
	}
	cfg, err := pgx.ParseConfig(conninfo)
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port, cfg.Fallbacks, cfg.TLSConfig = sock, uint16(port), nil, nil
	cfg.RuntimeParams["application_name"] = "clustermgr-health"
	pgctl.BoundMessages(&cfg.Config)
	return pgx.ConnectConfig(ctx, cfg)
}

// quoteConnValue quotes a libpq keyword/value connection string value.
func quoteConnValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// judge answers check for the server in dir from what was read of it
// (f, or the error that stopped the read), its declaration and lease.
func (s *Server) judge(check, dir string, decl role, f facts, readErr error, lag maxLag, now time.Time) HealthAnswer {
	ans := HealthAnswer{Check: check, Node: decl.Node, State: "running", Declared: decl.Role, Epoch: decl.Epoch, Sync: decl.Sync, Maintenance: decl.Maintenance}
	switch {
	case errors.Is(readErr, errStopped):
		ans.State, ans.Reason = "stopped", readErr.Error()
		return ans
	case readErr != nil:
		ans.State, ans.Reason = "unreachable", "the server does not answer: "+readErr.Error()
		return ans
	}
	ans.Role, ans.Streaming = "primary", f.streaming
	if f.inRecovery {
		ans.Role = "replica"
		ans.LagBytes, ans.LagSeconds = &f.lagBytes, &f.lagSeconds
	}
	s.mu.Lock()
	seen := s.epochs[dir].Epoch
	l, leased := s.leases[dir]
	var ls lease
	if leased {
		ls = *l
	}
	s.mu.Unlock()
	primary := func() string {
		switch {
		case f.inRecovery:
			return "the server is in recovery"
		case decl.Role != RolePrimary:
			return "the manager has not declared it primary"
		case decl.Epoch < seen:
			return fmt.Sprintf("declared primary at epoch %d, but epoch %d has been seen since", decl.Epoch, seen)
		case leased && !now.Before(ls.until) && now.Sub(ls.served) > servedFor:
			return "its lease ran out and too few standbys take its WAL"
		}
		return ""
	}
	replica := func() string {
		switch {
		case !f.inRecovery:
			return "the server is not in recovery"
		case !f.streaming:
			return "the server does not stream from a primary"
		case decl.Maintenance:
			return "the node is in maintenance"
		case lag.bytes > 0 && f.lagBytes > lag.bytes:
			return fmt.Sprintf("it lags %d bytes, more than %d", f.lagBytes, lag.bytes)
		case lag.time > 0 && f.lagSeconds > lag.time.Seconds():
			return fmt.Sprintf("it lags %.1f s, more than %v", f.lagSeconds, lag.time)
		}
		return ""
	}
	switch check {
	case CheckPrimary:
		ans.Reason = primary()
	case CheckReplica:
		ans.Reason = replica()
	case CheckReadOnly:
		if f.inRecovery {
			ans.Reason = replica()
		} else {
			ans.Reason = primary()
		}
	case CheckSync, CheckAsync:
		ans.Reason = replica()
		switch {
		case ans.Reason != "":
		case check == CheckSync && (!decl.Sync || decl.Epoch < seen):
			ans.Reason = "the node is not a synchronous standby"
		case check == CheckAsync && decl.Sync && decl.Epoch >= seen:
			ans.Reason = "the node is a synchronous standby"
		}
	case CheckHealth:
	}
	ans.OK = ans.Reason == ""
	return ans
}
