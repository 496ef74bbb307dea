package ha_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/ha"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// pendingEverywhere reports whether every node of sh shows name pending
// a restart (or, with want false, none does).
func pendingEverywhere(sh api.Shard, name string, want bool) bool {
	for _, n := range sh.Nodes {
		if n.Status == nil || slices.Contains(n.Status.PendingRestart, name) != want {
			return false
		}
	}
	return true
}

// appliedEverywhere reports whether every node has the shard's latest
// parameters.
func appliedEverywhere(sh api.Shard) bool {
	for _, n := range sh.Nodes {
		if n.ParamsApplied != sh.ParamsVersion {
			return false
		}
	}
	return sh.ParamsVersion > 0
}

// TestParameters_ReloadEverywhereRestartPending: parameters set on a
// shard reach every node of a real shard; a reload parameter takes
// effect everywhere, a restart parameter shows pending on every node; a
// value PostgreSQL refuses is refused before anything is recorded.
func TestParameters_ReloadEverywhereRestartPending(t *testing.T) {
	if testing.Short() {
		t.Skip("real PostgreSQL")
	}
	e := newEnv(t, ha.Config{})
	var sh api.Shard
	e.mustDo("PATCH", "/v1/clusters/app/shards/s1", map[string]any{"parameters": map[string]any{"work_mem": "12MB", "max_connections": "150"}}, http.StatusOK, &sh)
	if sh.Settings.Parameters["work_mem"] != "12MB" || sh.ParamsVersion != 1 {
		t.Fatalf("after PATCH: %+v version %d", sh.Settings.Parameters, sh.ParamsVersion)
	}
	e.waitFor(30*time.Second, "every node configured, max_connections pending everywhere", func() bool {
		sh := e.shard()
		return appliedEverywhere(sh) && pendingEverywhere(sh, "max_connections", true)
	})
	for name, s := range e.nodes {
		if v, err := s.QueryInt("SELECT pg_size_bytes(current_setting('work_mem'))"); err != nil || v != 12<<20 {
			t.Fatalf("%s: work_mem %d %v, want 12MB", name, v, err)
		}
		if v, _ := s.QueryInt("SELECT current_setting('max_connections')::int"); v == 150 {
			t.Fatalf("%s: max_connections took effect without a restart", name)
		}
	}
	if len(e.events("restart pending for max_connections")) < 3 {
		t.Fatalf("no parameters event per node: %+v", e.events("parameters"))
	}

	// PostgreSQL's own check refuses a bad value and an unknown name
	// before anything is recorded.
	for body, want := range map[string]string{
		`{"parameters": {"work_mem": "lots"}}`:      `invalid value for parameter \"work_mem\": \"lots\"`,
		`{"parameters": {"no_such_setting": "1"}}`:  `unrecognized configuration parameter \"no_such_setting\"`,
		`{"parameters": {"primary_conninfo": "x"}}`: "cannot be set",
		`{"parameters": {"max_connections": "-4"}}`: "max_connections",
	} {
		status, out := e.do("PATCH", "/v1/clusters/app/shards/s1", rawJSON(body), nil)
		if status != http.StatusBadRequest || !strings.Contains(string(out), want) {
			t.Errorf("PATCH %s: %d %s, want 400 naming %s", body, status, out, want)
		}
	}
	if v := e.shard().ParamsVersion; v != 1 {
		t.Fatalf("a refused change was recorded: version %d", v)
	}

	// A reset reaches every node too.
	e.mustDo("PATCH", "/v1/clusters/app/shards/s1", rawJSON(`{"parameters": {"work_mem": null}}`), http.StatusOK, &sh)
	e.waitFor(30*time.Second, "the reset everywhere", func() bool { return appliedEverywhere(e.shard()) })
	for name, s := range e.nodes {
		if v, _ := s.QueryInt("SELECT pg_size_bytes(current_setting('work_mem'))"); v != 4<<20 {
			t.Fatalf("%s: work_mem %d after the reset, want the default 4MB", name, v)
		}
	}
}

// rawJSON is a request body written as JSON text (a null in it stays).
func rawJSON(s string) json.RawMessage { return json.RawMessage(s) }

// longestPause is the longest time between two acknowledged writes.
func longestPause(acks []pgtest.Ack) time.Duration {
	var gap time.Duration
	for i := 1; i < len(acks); i++ {
		gap = max(gap, acks[i].At.Sub(acks[i-1].At))
	}
	return gap
}

// restartOp asks for a restart and waits for its operation to succeed.
func (e *env) restartOp(body string) api.Operation {
	e.t.Helper()
	var ref api.OperationRef
	e.mustDo("POST", "/v1/clusters/app/shards/s1/restart", rawJSON(body), http.StatusAccepted, &ref)
	op := e.waitOperation(ref.ID, 3*time.Minute)
	if op.State != "succeeded" {
		e.dump()
		e.t.Fatalf("restart %s: %s %s %+v", body, op.State, op.Error, op.Steps)
	}
	return op
}

// TestRestart_RollingClearsPendingWithOneSwitchover: a restart parameter
// set on a real shard is pending on every node; a rolling restart of the
// nodes that need it restarts the standbys one at a time, then switches
// over (restarting the old primary as a standby): the new value runs
// everywhere, nothing is pending, a client writing all along lost no
// acknowledged row. Lowering that parameter again restarts the primary
// first, in place, as PostgreSQL requires of a standby.
func TestRestart_RollingClearsPendingWithOneSwitchover(t *testing.T) {
	if testing.Short() {
		t.Skip("real PostgreSQL")
	}
	e := newEnv(t, ha.Config{})
	e.nodes["pg1"].Exec("CREATE TABLE t (id bigint PRIMARY KEY)")
	e.mustDo("PATCH", "/v1/clusters/app/shards/s1", rawJSON(`{"parameters": {"max_connections": "150"}}`), http.StatusOK, nil)
	e.waitFor(30*time.Second, "max_connections pending on every node", func() bool {
		sh := e.shard()
		return appliedEverywhere(sh) && pendingEverywhere(sh, "max_connections", true)
	})
	// Bad requests name what is wrong.
	for body, want := range map[string]string{
		`{}`:                               "rolling: a shard restarts node by node",
		`{"node": "pg2", "rolling": true}`: "a node is restarted alone",
		`{"node": "pg9"}`:                  `node \"pg9\" is not in the shard`,
	} {
		if status, out := e.do("POST", "/v1/clusters/app/shards/s1/restart", rawJSON(body), nil); status/100 != 4 || !strings.Contains(string(out), want) {
			t.Errorf("restart %s: %d %s, want 4xx naming %s", body, status, out, want)
		}
	}

	w, stop := e.startWriter(2 * time.Millisecond)
	e.waitFor(10*time.Second, "writes", func() bool { return len(w.Acked()) > 50 })
	op := e.restartOp(`{"rolling": true, "only_pending": true}`)
	var names []string
	for _, st := range op.Steps {
		names = append(names, st.Name)
	}
	if want := "restart-pg2 restart-pg3 checkpoint stop-old-primary wait-target-caught-up promote create-slots record-primary repoint-standbys restart-old-primary-as-standby await-standbys-streaming"; strings.Join(names, " ") != want {
		t.Fatalf("steps %v, want %s", names, want)
	}
	e.waitFor(30*time.Second, "nothing pending, the shard healthy", func() bool {
		sh := e.shard()
		return sh.State == "healthy" && pendingEverywhere(sh, "max_connections", false)
	})
	e.waitFor(10*time.Second, "more writes", func() bool { return len(w.Acked()) > 100 })
	stop()
	newPrimary := e.primary()
	if newPrimary == "pg1" {
		t.Fatal("no switchover")
	}
	for name, s := range e.nodes {
		if v, err := s.QueryInt("SELECT current_setting('max_connections')::int"); err != nil || v != 150 {
			t.Fatalf("%s: max_connections %d %v after the restart, want 150", name, v, err)
		}
	}
	acked := w.Acked()
	var missing int64
	if err := pgxQueryRow(e.nodes[newPrimary].DSN(), "SELECT count(*) FROM unnest($1::bigint[]) id WHERE id NOT IN (SELECT id FROM t)", acked, &missing); err != nil || missing != 0 {
		t.Fatalf("%d of %d acknowledged rows missing on %s (%v)", missing, len(acked), newPrimary, err)
	}
	t.Logf("rolling restart %s: longest pause between acknowledged writes %v (%d writes)", op.ID, longestPause(w.Acks()).Round(time.Millisecond), len(w.Acked()))

	// Lower it: the primary restarts first, in place.
	e.mustDo("PATCH", "/v1/clusters/app/shards/s1", rawJSON(`{"parameters": {"max_connections": "120"}}`), http.StatusOK, nil)
	e.waitFor(30*time.Second, "max_connections pending again", func() bool {
		sh := e.shard()
		return appliedEverywhere(sh) && pendingEverywhere(sh, "max_connections", true)
	})
	op = e.restartOp(`{"rolling": true}`)
	names = names[:0]
	for _, st := range op.Steps {
		names = append(names, st.Name)
	}
	var standbys []string
	for _, n := range []string{"pg1", "pg2", "pg3"} {
		if n != newPrimary {
			standbys = append(standbys, "restart-"+n)
		}
	}
	if want := "restart-" + newPrimary + " " + strings.Join(standbys, " "); strings.Join(names, " ") != want {
		t.Fatalf("steps %v, want %s", names, want)
	}
	e.waitFor(30*time.Second, "healthy, nothing pending", func() bool {
		sh := e.shard()
		return sh.State == "healthy" && pendingEverywhere(sh, "max_connections", false) && sh.Primary == newPrimary
	})
	for name, s := range e.nodes {
		if v, _ := s.QueryInt("SELECT current_setting('max_connections')::int"); v != 120 {
			t.Fatalf("%s: max_connections %d, want 120", name, v)
		}
	}
	// One standby alone.
	op = e.restartOp(`{"node": "` + strings.TrimPrefix(standbys[0], "restart-") + `"}`)
	if len(op.Steps) != 1 {
		t.Fatalf("steps %+v", op.Steps)
	}
}

// pgxQueryRow runs one query on a fresh connection and scans its row.
func pgxQueryRow(dsn, sql string, arg any, dest ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(ctx, sql, arg).Scan(dest...)
}

// TestRestart_CancelledAndResumed: a rolling restart cancelled while its
// first node restarts stops after that step; one whose leader dies after
// its first step is finished by the next leader.
func TestRestart_CancelledAndResumed(t *testing.T) {
	if testing.Short() {
		t.Skip("real PostgreSQL")
	}
	e := newEnv(t, ha.Config{})
	release := e.holdAgent("/v1/agent/restart")
	var ref api.OperationRef
	e.mustDo("POST", "/v1/clusters/app/shards/s1/restart", rawJSON(`{"rolling": true}`), http.StatusAccepted, &ref)
	e.waitFor(30*time.Second, "the first restart under way", func() bool {
		op := e.operation(ref.ID)
		return len(op.Steps) > 0 && op.Steps[0].State == "running"
	})
	e.mustDo("DELETE", "/v1/operations/"+ref.ID, nil, http.StatusAccepted, nil)
	release()
	op := e.waitOperation(ref.ID, 60*time.Second)
	if op.State != "cancelled" || op.Steps[0].State != "done" || op.Steps[1].State == "done" {
		t.Fatalf("cancelled restart: %s %+v", op.State, op.Steps)
	}
	if e.primary() != "pg1" {
		t.Fatal("a cancelled restart switched over")
	}
	e.waitShardState("healthy", 30*time.Second)

	leader := e.leader()
	killed := make(chan struct{})
	leader.HA.Executor().AfterStep = func(ctx context.Context, op *meta.Operation, step string) {
		if op.Kind != "restart" || step != "restart-pg2" {
			return
		}
		go func() {
			_ = leader.Kill()
			close(killed)
		}()
		<-ctx.Done()
	}
	e.mustDo("POST", "/v1/clusters/app/shards/s1/restart", rawJSON(`{"rolling": true}`), http.StatusAccepted, &ref)
	select {
	case <-killed:
	case <-time.After(60 * time.Second):
		t.Fatal("the leader was not killed mid-restart")
	}
	op = e.waitOperation(ref.ID, 3*time.Minute)
	if op.State != "succeeded" {
		t.Fatalf("resumed restart: %s %s %+v", op.State, op.Error, op.Steps)
	}
	if e.primary() == "pg1" {
		t.Fatal("the resumed restart did not switch over")
	}
}
