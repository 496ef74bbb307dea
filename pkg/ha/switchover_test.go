package ha_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/ha"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

func (e *env) switchover(to string) api.OperationRef {
	e.t.Helper()
	var ref api.OperationRef
	body := map[string]any{}
	if to != "" {
		body["to"] = to
	}
	// A routine operation (a rejoin, a repoint) may still run on the
	// shard: the API answers 409 naming it until it ends.
	e.waitFor(60*time.Second, "the switchover accepted", func() bool {
		status, data := e.do("POST", "/v1/clusters/app/shards/s1/switchover", body, &ref)
		if status == http.StatusConflict && strings.Contains(string(data), ") is running on shard") {
			return false
		}
		if status != http.StatusAccepted {
			e.t.Fatalf("POST switchover: %d %s, want 202", status, data)
		}
		return true
	})
	return ref
}

func TestSwitchover_ToNamedAndToChosenStandby(t *testing.T) {
	e := newEnv(t, ha.Config{})
	e.nodes["pg1"].Exec("CREATE TABLE t (id bigint primary key)")
	e.nodes["pg1"].Exec("INSERT INTO t SELECT generate_series(1, 50)")
	e.waitStandbyOf("pg3", "pg1", 10*time.Second)

	ref := e.switchover("pg3")
	op := e.waitOperation(ref.ID, 60*time.Second)
	if op.State != "succeeded" || op.Target != "pg3" || op.From != "pg1" || len(op.Steps) != 9 {
		e.dump()
		t.Fatalf("switchover %+v", op)
	}
	for _, s := range op.Steps {
		if s.State != "done" {
			t.Fatalf("step %+v", s)
		}
	}
	// It ends once the other nodes follow the new primary.
	if last := op.Steps[8]; last.Name != "await-standbys-streaming" || !strings.HasPrefix(last.Detail, "[pg1, pg2] stream from pg3 after ") {
		t.Fatalf("last step %+v", last)
	} else {
		t.Log(last.Detail)
	}
	e.waitFor(10*time.Second, "pg3 as primary", func() bool { return e.primary() == "pg3" })
	e.nodes["pg3"].Exec("INSERT INTO t SELECT generate_series(51, 60)")
	e.waitStandbyOf("pg1", "pg3", 30*time.Second)
	e.waitStandbyOf("pg2", "pg3", 30*time.Second)
	if n := e.count("pg3"); n != 60 {
		t.Fatalf("rows on pg3: %d", n)
	}

	// Without a target the best standby is chosen.
	e.waitShardState("healthy", 30*time.Second)
	ref = e.switchover("")
	op = e.waitOperation(ref.ID, 60*time.Second)
	if op.State != "succeeded" || op.Target == "pg3" || op.From != "pg3" {
		e.dump()
		t.Fatalf("automatic switchover %+v", op)
	}
	e.waitFor(10*time.Second, "the chosen primary", func() bool { return e.primary() == op.Target })
	e.waitStandbyOf("pg3", op.Target, 30*time.Second)
	if sh := e.shard(); sh.Epoch != 3 {
		t.Fatalf("epoch %d after two switchovers", sh.Epoch)
	}
}

func TestSwitchover_RefusedForUnhealthyOrLaggingTarget(t *testing.T) {
	e := newEnv(t, ha.Config{})
	// Pause automatic actions so that nothing repairs what the test breaks.
	e.mustDo("PATCH", "/v1/clusters/app", map[string]any{"auto_failover": false}, http.StatusOK, nil)

	// Unhealthy: pg3 is stopped.
	ctx := context.Background()
	if err := e.pg.Runner.Stop(ctx, e.nodes["pg3"].DataDir, "fast"); err != nil {
		t.Fatal(err)
	}
	e.waitFor(10*time.Second, "pg3 down", func() bool {
		for _, n := range e.shard().Nodes {
			if n.Name == "pg3" {
				return n.Status != nil && n.Status.Health == "down"
			}
		}
		return false
	})
	status, body := e.do("POST", "/v1/clusters/app/shards/s1/switchover", map[string]any{"to": "pg3"}, nil)
	if status != http.StatusConflict || !strings.Contains(string(body), "pg3 is not healthy") {
		t.Fatalf("switchover to a stopped standby: %d %s", status, body)
	}

	// Lagging: pg2 stops receiving WAL, the primary writes 4 MB, the
	// shard allows 1 MB of lag.
	e.mustDo("PATCH", "/v1/clusters/app/shards/s1", map[string]any{"max_lag_on_failover": 1 << 20}, http.StatusOK, nil)
	e.nodes["pg2"].Exec("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=postgres'")
	e.nodes["pg2"].Exec("SELECT pg_reload_conf()")
	e.nodes["pg1"].Exec("CREATE TABLE big AS SELECT g, repeat('x', 400) AS pad FROM generate_series(1, 10000) g")
	e.waitFor(10*time.Second, "pg2 lagging", func() bool {
		for _, n := range e.shard().Nodes {
			if n.Name == "pg2" {
				return n.Status != nil && n.Status.LagBytes > 1<<20
			}
		}
		return false
	})
	status, body = e.do("POST", "/v1/clusters/app/shards/s1/switchover", map[string]any{"to": "pg2"}, nil)
	if status != http.StatusConflict || !strings.Contains(string(body), "pg2 is") || !strings.Contains(string(body), "bytes behind pg1") {
		t.Fatalf("switchover to a lagging standby: %d %s", status, body)
	}
	status, body = e.do("POST", "/v1/clusters/app/shards/s1/switchover", map[string]any{}, nil)
	if status != http.StatusConflict || !strings.Contains(string(body), "no standby can take over") {
		t.Fatalf("switchover with no fit standby: %d %s", status, body)
	}
	status, body = e.do("POST", "/v1/clusters/app/shards/s1/switchover", map[string]any{"to": "pg9"}, nil)
	if status != http.StatusNotFound {
		t.Fatalf("switchover to an unknown node: %d %s", status, body)
	}
	status, body = e.do("POST", "/v1/clusters/app/shards/s1/switchover", map[string]any{"to": "pg1"}, nil)
	if status != http.StatusConflict || !strings.Contains(string(body), "already the primary") {
		t.Fatalf("switchover to the primary: %d %s", status, body)
	}
	if sh := e.shard(); sh.Primary != "pg1" || sh.Epoch != 1 || sh.State != "paused" {
		t.Fatalf("shard changed: %+v", sh)
	}
}

// TestSwitchover_NewLeaderFinishesWhatTheKilledLeaderStarted kills the
// manager leader right after it stopped the old primary; the next leader
// resumes the operation and completes the switchover.
func TestSwitchover_NewLeaderFinishesWhatTheKilledLeaderStarted(t *testing.T) {
	e := newEnv(t, ha.Config{})
	e.nodes["pg1"].Exec("CREATE TABLE t (id bigint primary key)")
	e.nodes["pg1"].Exec("INSERT INTO t SELECT generate_series(1, 20)")
	e.waitStandbyOf("pg2", "pg1", 10*time.Second)
	leader := e.leader()
	killed := make(chan struct{})
	leader.HA.Executor().AfterStep = func(ctx context.Context, op *meta.Operation, step string) {
		if step != "stop-old-primary" {
			return
		}
		go func() {
			_ = leader.Kill()
			close(killed)
		}()
		<-ctx.Done() // this leader does nothing more
	}
	ref := e.switchover("pg2")
	select {
	case <-killed:
	case <-time.After(60 * time.Second):
		e.dump()
		t.Fatal("the leader was not killed mid-switchover")
	}
	for i, r := range e.reps {
		if r == leader {
			e.reps[i] = nil
		}
	}
	next := e.leader()
	if next == leader {
		t.Fatal("no new leader")
	}
	op := e.waitOperation(ref.ID, 60*time.Second)
	if op.State != "succeeded" {
		e.dump()
		t.Fatalf("switchover after leader change: %+v", op)
	}
	e.waitFor(10*time.Second, "pg2 as primary", func() bool { return e.primary() == "pg2" })
	e.nodes["pg2"].Exec("INSERT INTO t SELECT generate_series(21, 30)")
	e.waitStandbyOf("pg1", "pg2", 30*time.Second)
	if n := e.count("pg2"); n != 30 {
		t.Fatalf("rows on pg2: %d", n)
	}
}

// TestSwitchover_BackWithinTheOldLease switches over and straight back,
// three times: the node promoted again still holds, at its agent, the
// lease it had as the primary before, which runs out moments after the
// promotion. Its agent must not fence it on that lease (it did whenever
// the old lease ran out before the new primary's first renewal, while the
// other node restarted as its standby: the shard then failed over).
func TestSwitchover_BackWithinTheOldLease(t *testing.T) {
	e := newProvisionedShard(t)
	for range 3 {
		for _, to := range []string{"pg2", "pg1"} {
			e.waitShardState("healthy", 30*time.Second)
			if op := e.waitOperation(e.switchover(to).ID, time.Minute); op.State != "succeeded" {
				e.dump()
				t.Fatalf("switchover to %s: %+v", to, op)
			}
		}
	}
	// An old lease runs out within its TTL (1.5 s) of the last switchover.
	time.Sleep(2 * time.Second)
	if fo := e.events("failover"); len(fo) > 0 {
		e.dump()
		t.Fatalf("the shard failed over after switching back: %+v", fo)
	}
	if sh := e.shard(); sh.Primary != "pg1" || sh.Epoch != 7 {
		e.dump()
		t.Fatalf("primary %s at epoch %d after six switchovers, want pg1 at 7", sh.Primary, sh.Epoch)
	}
}

// TestSwitchover_RightAfterAnother: a switchover asked for the moment the
// last one ended is decided on what the nodes are now. Decided on the
// samples from while the last one ran, the old primary (a standby now)
// was refused as "not a standby in recovery" and the others as not
// streaming from the new primary.
func TestSwitchover_RightAfterAnother(t *testing.T) {
	e := newEnv(t, ha.Config{})
	e.waitStandbyOf("pg2", "pg1", 10*time.Second)
	e.waitStandbyOf("pg3", "pg1", 10*time.Second)
	for i, to := range []string{"pg2", "pg1", "pg3", "pg1"} {
		if op := e.waitOperation(e.switchover(to).ID, time.Minute); op.State != "succeeded" {
			e.dump()
			t.Fatalf("switchover %d to %s: %+v", i+1, to, op)
		}
	}
	e.waitFor(10*time.Second, "pg1 as primary", func() bool { return e.primary() == "pg1" })
}

// TestSwitchover_EndsWithTheStandbysStreaming: a switchover ends once the
// other nodes stream from the new primary, so one asked for the moment
// it ended is accepted. pg3's stream is cut after the repoint (a reload
// that did not take, a receiver slow to reconnect): the switchover points
// it again and waits. It ended at once before, and the next switchover
// was refused: "pg3 is not streaming from pg2".
func TestSwitchover_EndsWithTheStandbysStreaming(t *testing.T) {
	e := newEnv(t, ha.Config{})
	ref, release := e.switchoverHeldAt("restart-old-primary-as-standby")
	defer release()
	e.cutStream("pg3", "pg2")
	release()
	first := e.waitOperation(ref.ID, time.Minute)
	if first.State != "succeeded" {
		e.dump()
		t.Fatalf("switchover to pg2: %+v", first)
	}
	if op := e.waitOperation(e.switchover("pg3").ID, time.Minute); op.State != "succeeded" {
		e.dump()
		t.Fatalf("switchover to pg3: %+v", op)
	}
	last := first.Steps[len(first.Steps)-1]
	_, again, _ := strings.Cut(last.Detail, "repointed again: ")
	again, _, _ = strings.Cut(again, ";")
	if !slices.Contains(strings.Split(again, ", "), "pg3") {
		t.Fatalf("last step %+v, want pg3 repointed again", last)
	}
	t.Log(last.Detail)
}

// TestSwitchover_NewPrimaryLeaseRenewedUntilTheEnd: once a switchover has
// recorded the new primary, that primary's lease is renewed while the
// rest of it runs. Both standbys are cut off in front of its last step,
// for longer than a lease and its fencing slack: no renewal then, and no
// standby acknowledging, made pg2's agent kill the primary the
// switchover had just made.
func TestSwitchover_NewPrimaryLeaseRenewedUntilTheEnd(t *testing.T) {
	e := newEnv(t, ha.Config{})
	ref, release := e.switchoverHeldAt("await-standbys-streaming")
	defer release()
	started := e.postmasterStart("pg2")
	e.cutStream("pg1", "pg2")
	e.cutStream("pg3", "pg2")
	// Writes go on for a lease and its fencing slack (2.5 s), and more.
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if _, err := e.nodes["pg2"].QueryInt("INSERT INTO t VALUES (1) RETURNING 1"); err != nil {
			t.Fatalf("pg2, the new primary, stopped taking writes while the switchover ended: %v", err)
		}
	}
	release()
	if op := e.waitOperation(ref.ID, time.Minute); op.State != "succeeded" {
		e.dump()
		t.Fatalf("switchover to pg2: %+v", op)
	}
	if got := e.postmasterStart("pg2"); got != started {
		t.Fatalf("pg2 was restarted (postmaster start %d, was %d)", got, started)
	}
	e.waitStandbyOf("pg1", "pg2", 30*time.Second)
	e.waitStandbyOf("pg3", "pg2", 30*time.Second)
}

// TestSwitchover_EndsAtOnceWithoutItsNewPrimary: the switchover's wait
// for the standbys ends as soon as the new primary is gone (a switchover
// is not preempted: the failover waits for its end), and it waits for no
// standby that cannot be connected to.
func TestSwitchover_EndsAtOnceWithoutItsNewPrimary(t *testing.T) {
	e := newEnv(t, ha.Config{})
	op, last := e.switchoverEndingAfter(func() {
		e.cutStream("pg3", "pg2")
		e.nodes["pg2"].Crash()
	})
	if op.State != "succeeded" || !strings.Contains(last.Detail, "not waited for further: pg2, the new primary, ") || !strings.Contains(last.Detail, "pg3 (") {
		e.dump()
		t.Fatalf("switchover %+v, last step %+v: want the wait ended for pg2's loss, pg3 named", op, last)
	}
	t.Log(last.Detail)
	if p := e.waitPrimaryNot("pg2", 60*time.Second); p == "" {
		t.Fatal("no failover after the new primary's crash")
	}
}

// TestSwitchover_WaitsForNoUnreachableStandby: a standby down when the
// switchover ends is not waited for; the detail names it.
func TestSwitchover_WaitsForNoUnreachableStandby(t *testing.T) {
	e := newEnv(t, ha.Config{})
	op, last := e.switchoverEndingAfter(e.nodes["pg3"].Crash)
	if op.State != "succeeded" || !strings.HasPrefix(last.Detail, "[pg1] stream from pg2 after ") || !strings.Contains(last.Detail, "left to the repoint and rejoin decisions: pg3 (unreachable: ") {
		e.dump()
		t.Fatalf("switchover %+v, last step %+v: want pg3 named unreachable", op, last)
	}
	t.Log(last.Detail)
}

// switchoverEndingAfter runs a switchover from pg1 to pg2, calls fault
// in front of its last step, and returns the operation with that step.
func (e *env) switchoverEndingAfter(fault func()) (api.Operation, api.OperationStep) {
	e.t.Helper()
	ref, release := e.switchoverHeldAt("await-standbys-streaming")
	defer release()
	fault()
	release()
	op := e.waitOperation(ref.ID, time.Minute)
	return op, op.Steps[len(op.Steps)-1]
}
