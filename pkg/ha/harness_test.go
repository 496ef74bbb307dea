package ha_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/apitest"
	"github.com/clustermgr/clustermgr/internal/authtest"
	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/internal/tlstest"
	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/ha"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/replica"
	"github.com/clustermgr/clustermgr/pkg/service"
	"github.com/clustermgr/clustermgr/pkg/tlsconf"
)

const (
	agentToken = "agent-token-0123456789"
)

// env is a PostgreSQL shard (pg1 primary, pg2 and pg3 standbys) with an
// agent, watched by a 3-replica manager group running the HA pipeline.
type env struct {
	t     testing.TB
	pg    *pgtest.Env
	nodes map[string]*pgtest.Server
	reps  []*replica.Replica
	dirs  []string // the replicas' data directories
	agent string   // the registered name of the agent
	root  string   // the agent's data root
	// answers keeps every API answer the harness got.
	answers lockedBuffer
	// api reaches the replicas' HTTPS API (the group runs TLS, with
	// certificates from a CA the harness makes).
	api *http.Client
	// hold, when set, is called with each agent command's path before the
	// agent runs it (a test holds a command back until it is ready).
	hold atomic.Pointer[func(path string)]
}

// holdAgent makes the agent's command at path wait until the returned
// release is called (or the test ends).
func (e *env) holdAgent(path string) (release func()) {
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	e.t.Cleanup(release)
	f := func(p string) {
		if p == path {
			<-gate
		}
	}
	e.hold.Store(&f)
	return release
}

func logger() *slog.Logger {
	if os.Getenv("HA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newGroup starts an agent (data root: <pgtest dir>/root) and a 3-replica
// manager group running the HA pipeline, with no shard yet.
func newGroup(t testing.TB, haCfg ha.Config) *env {
	t.Helper()
	e := &env{t: t, pg: pgtest.NewEnv(t), nodes: map[string]*pgtest.Server{}}
	lg := logger()
	if haCfg.Logger != nil { // the test keeps every log line (debug included)
		lg, haCfg.Logger = haCfg.Logger, nil
	}
	e.root = filepath.Join(e.pg.Dir, "root")
	ag, err := agent.NewServer(agentToken, e.pg.Runner, lg, e.root, e.pg.Dir) // the adopted nodes live in e.pg.Dir
	if err != nil {
		t.Fatal(err)
	}
	// Everything runs over TLS, as a production group would: the API over
	// HTTPS, Raft and the agent over mutual TLS.
	ca := tlstest.NewCA(t, "group")
	bundle := func(name string) *tlsconf.Bundle {
		cert, key := ca.Issue(name)
		b, err := tlsconf.Load(cert, key, ca.File)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pool, err := tlsconf.LoadCA(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	// Every request and answer is held to the API document.
	e.api = &http.Client{Timeout: 10 * time.Second, Transport: apitest.NewTransport(t, &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}})}
	agentSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := e.hold.Load(); f != nil {
			(*f)(r.URL.Path)
		}
		ag.ServeHTTP(w, r)
	}))
	agentSrv.TLS = bundle("agent").Peer()
	agentSrv.StartTLS()
	leaseCtx, stopLeases := context.WithCancel(context.Background())
	leasesDone := make(chan struct{})
	go func() {
		defer close(leasesDone)
		ag.RunLeases(leaseCtx)
	}()
	t.Cleanup(func() {
		stopLeases()
		<-leasesDone
		agentSrv.Close()
	})
	agentURL := agentSrv.URL
	timing := meta.DefaultTiming()
	timing.HeartbeatTimeout, timing.ElectionTimeout, timing.LeaderLeaseTimeout = 200*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
	timing.CommitTimeout = 5 * time.Millisecond
	// No peer token: followers' views are authenticated by the secret the
	// group generates, as with the default configuration.
	haCfg.AgentToken = agentToken
	if haCfg.ProbeInterval == 0 {
		haCfg.ProbeInterval = 200 * time.Millisecond
	}
	if haCfg.ProbeTimeout == 0 {
		haCfg.ProbeTimeout = 500 * time.Millisecond
	}
	if haCfg.RejoinBackoff == 0 {
		haCfg.RejoinBackoff = 2 * time.Second
	}
	var peers []meta.Peer
	for i, port := range pgtest.FreePorts(t, 3) {
		peers = append(peers, meta.Peer{ID: fmt.Sprintf("m%d", i+1), RaftAddr: fmt.Sprintf("127.0.0.1:%d", port)})
	}
	tokenFile := authtest.TokenFile(t)
	for _, pr := range peers {
		hc := haCfg
		dir := t.TempDir()
		e.dirs = append(e.dirs, dir)
		r, err := replica.Start(replica.Config{
			NodeID: pr.ID, DataDir: dir, RaftAddr: pr.RaftAddr, APIListen: "127.0.0.1:0", Peers: peers,
			Timing: timing, RegisterInterval: 50 * time.Millisecond, HA: &hc, Logger: lg.With("replica", pr.ID),
			AdminTokenFile: tokenFile, Keyring: authtest.Keyring(), TLS: bundle(pr.ID),
			// Every exchange it serves is held to the API document too:
			// followers' views, forwarded requests, the dashboard's.
			WrapAPI: apitest.Middleware(t),
			// The scheduled-backup test fires every 2 s.
			API: service.Options{BackupMinInterval: time.Second},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Kill() })
		e.reps = append(e.reps, r)
	}
	e.waitFor(15*time.Second, "a leader known to all and the admin token recorded", func() bool {
		for _, r := range e.reps {
			if _, api := r.Store.Leader(); api == "" {
				return false
			}
			tokens := 0
			_ = r.Store.View(context.Background(), meta.Stale, func(st *meta.State) error {
				tokens = len(st.Tokens)
				return nil
			})
			if tokens == 0 {
				return false
			}
		}
		return true
	})
	e.agent = "h1"
	e.mustDo("POST", "/v1/agents", map[string]any{"name": e.agent, "url": agentURL}, http.StatusCreated, nil)
	return e
}

func newEnv(t testing.TB, haCfg ha.Config) *env {
	t.Helper()
	e := newGroup(t, haCfg)
	e.startShard(map[string]any{"name": "app", "pg_user": "postgres"})
	return e
}

// startShard starts pg1 and its standbys pg2 and pg3, registers cluster
// (the body of POST /v1/clusters, named app) and its shard s1 of them,
// and waits until the shard is healthy.
func (e *env) startShard(cluster map[string]any) {
	e.t.Helper()
	p := e.pg.StartPrimary("pg1")
	e.nodes["pg1"] = p
	e.nodes["pg2"] = e.pg.StartStandby("pg2", p)
	e.nodes["pg3"] = e.pg.StartStandby("pg3", p)
	e.mustDo("POST", "/v1/clusters", cluster, http.StatusCreated, nil)
	var nodes []map[string]any
	for _, name := range []string{"pg1", "pg2", "pg3"} {
		s := e.nodes[name]
		role := "standby"
		if name == "pg1" {
			role = "primary"
		}
		nodes = append(nodes, map[string]any{"name": name, "host": s.Host, "port": s.Port, "role": role, "agent": e.agent, "data_dir": s.DataDir})
	}
	e.mustDo("POST", "/v1/clusters/app/shards", map[string]any{"name": "s1", "nodes": nodes}, http.StatusCreated, nil)
	e.waitShardState("healthy", 20*time.Second)
}

func (e *env) waitFor(d time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			e.dump()
			e.t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dump logs the shard and the events, to explain a failure.
func (e *env) dump() {
	var sh json.RawMessage
	if status, _ := e.do("GET", "/v1/clusters/app/shards/s1", nil, &sh); status == 200 {
		e.t.Logf("shard: %s", sh)
	}
	var ev api.EventList
	e.do("GET", "/v1/events?limit=60", nil, &ev)
	for _, x := range ev.Events {
		e.t.Logf("event %d %s %s %s: %s", x.ID, x.At.Format("15:04:05.000"), x.Kind, x.Node, x.Message)
	}
}

// live returns the replicas that have not been killed.
func (e *env) live() []*replica.Replica {
	var out []*replica.Replica
	for _, r := range e.reps {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

func (e *env) leader() *replica.Replica {
	e.t.Helper()
	var l *replica.Replica
	e.waitFor(15*time.Second, "a manager leader", func() bool {
		for _, r := range e.live() {
			if r.Store.IsLeader() {
				l = r
				return true
			}
		}
		return false
	})
	return l
}

// do sends a request to any live replica (followers forward), trying
// again for up to 5 s while every replica answers that no leader is
// known (an election under load; such a request was not applied).
func (e *env) do(method, path string, body, out any) (int, []byte) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, data := e.doOnce(method, path, body, out)
		noLeader := bytes.Contains(data, []byte("no leader is known")) || bytes.Contains(data, []byte("which is not the leader"))
		if status != http.StatusServiceUnavailable || !noLeader || time.Now().After(deadline) {
			return status, data
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// doOnce sends a request to the live replicas in turn until one answers
// other than 503 (followers forward).
func (e *env) doOnce(method, path string, body, out any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	var data []byte
	status := 0
	for _, r := range e.live() {
		if rd != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, r.URL+path, rd)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+authtest.AdminToken)
		resp, err := e.api.Do(req)
		if err != nil {
			continue
		}
		data, _ = io.ReadAll(resp.Body)
		e.answers.Write(data)
		resp.Body.Close()
		status = resp.StatusCode
		if status == http.StatusServiceUnavailable && !strings.Contains(path, "/primary") {
			continue
		}
		break
	}
	if out != nil && status >= 200 && status < 300 {
		_ = json.Unmarshal(data, out)
	}
	return status, data
}

func (e *env) mustDo(method, path string, body any, want int, out any) {
	e.t.Helper()
	status, data := e.do(method, path, body, out)
	if status != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, status, data, want)
	}
}

// shard reads the shard, retrying for up to 15 s while no replica answers
// 200 (an election under load): a condition on it then never sees an
// empty shard for a failed read.
func (e *env) shard() api.Shard {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var sh api.Shard
		status, body := e.do("GET", "/v1/clusters/app/shards/s1", nil, &sh)
		if status == http.StatusOK {
			return sh
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("GET the shard: %d %s", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) waitShardState(state string, d time.Duration) {
	e.t.Helper()
	e.waitFor(d, "shard state "+state, func() bool { return e.shard().State == state })
}

// primary asks the API for the primary ("" when it answers 503).
func (e *env) primary() string {
	var p api.Primary
	if status, _ := e.do("GET", "/v1/clusters/app/shards/s1/primary", nil, &p); status == 200 {
		return p.Node
	}
	return ""
}

func (e *env) waitPrimaryNot(old string, d time.Duration) string {
	e.t.Helper()
	var now string
	e.waitFor(d, "a primary other than "+old, func() bool {
		now = e.primary()
		return now != "" && now != old
	})
	return now
}

// waitStandbyOf waits until node is in recovery and streams from primary.
func (e *env) waitStandbyOf(node, primary string, d time.Duration) {
	e.t.Helper()
	p := e.nodes[primary]
	e.waitFor(d, node+" streaming from "+primary, func() bool {
		n, err := p.QueryInt("SELECT count(*) FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'", node)
		if err != nil || n != 1 {
			return false
		}
		rec, err := e.nodes[node].InRecovery()
		return err == nil && rec
	})
}

func (e *env) operation(id string) api.Operation {
	var op api.Operation
	e.do("GET", "/v1/operations/"+id, nil, &op)
	return op
}

func (e *env) waitOperation(id string, d time.Duration) api.Operation {
	e.t.Helper()
	var op api.Operation
	e.waitFor(d, "operation "+id+" to finish", func() bool {
		op = e.operation(id)
		return op.State == "succeeded" || op.State == "failed" || op.State == "cancelled"
	})
	return op
}

func (e *env) events(contains string) []api.Event {
	var ev api.EventList
	e.do("GET", "/v1/events?limit=1000", nil, &ev)
	var out []api.Event
	for _, x := range ev.Events {
		if strings.Contains(x.Message, contains) {
			out = append(out, x)
		}
	}
	return out
}

func (e *env) count(node string) int64 {
	e.t.Helper()
	n, err := e.nodes[node].QueryInt("SELECT count(*) FROM t")
	if err != nil {
		e.t.Fatalf("count on %s: %v", node, err)
	}
	return n
}

// startWriter runs a counted write loop into table t that follows the
// primary the API names. stop ends it and waits for it.
func (e *env) startWriter(interval time.Duration) (*pgtest.Writer, func()) {
	var mu sync.Mutex
	target := ""
	if p := e.primary(); p != "" {
		target = e.nodes[p].DSN()
	}
	w := &pgtest.Writer{Table: "t", Target: func() string {
		mu.Lock()
		defer mu.Unlock()
		return target
	}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		w.Run(ctx, interval)
	}()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if p := e.primary(); p != "" {
				mu.Lock()
				target = e.nodes[p].DSN()
				mu.Unlock()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return w, func() {
		cancel()
		wg.Wait()
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
