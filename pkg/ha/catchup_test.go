package ha_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/ha"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// holdSwitchoverAt holds the next switchover in front of its step until
// the returned release is called; held is closed when it is held.
func (e *env) holdSwitchoverAt(step string) (held <-chan struct{}, release func()) {
	h, r := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	for _, rep := range e.live() {
		rep.HA.Executor().BeforeStep = func(ctx context.Context, op *meta.Operation, name string) {
			if op.Kind == "switchover" && name == step && once.CompareAndSwap(false, true) {
				close(h)
				select {
				case <-r:
				case <-ctx.Done():
				}
			}
		}
	}
	var closed atomic.Bool
	return h, func() {
		if closed.CompareAndSwap(false, true) {
			close(r)
		}
	}
}

// switchoverHeldAt creates table t on pg1, starts a switchover from pg1
// to pg2 once both standbys stream, and returns when it is held in front
// of step, with the release that lets it go on.
func (e *env) switchoverHeldAt(step string) (api.OperationRef, func()) {
	e.t.Helper()
	e.nodes["pg1"].Exec("CREATE TABLE t (id bigint)")
	e.waitStandbyOf("pg2", "pg1", 10*time.Second)
	e.waitStandbyOf("pg3", "pg1", 10*time.Second)
	held, release := e.holdSwitchoverAt(step)
	ref := e.switchover("pg2")
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		release()
		e.t.Fatalf("the switchover never reached its %s step", step)
	}
	return ref, release
}

// cutStream points node's WAL receiver at a closed port, waits until the
// primary no longer streams to it, and writes on the primary: node then
// lacks WAL that the primary has.
func (e *env) cutStream(node, primary string) {
	e.t.Helper()
	e.nodes[node].Exec("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 connect_timeout=1'")
	e.nodes[node].Exec("SELECT pg_reload_conf()")
	e.waitFor(30*time.Second, node+" no longer streaming", func() bool {
		n, err := e.nodes[primary].QueryInt("SELECT count(*) FROM pg_stat_replication WHERE application_name = $1", node)
		return err == nil && n == 0
	})
	e.nodes[primary].Exec("INSERT INTO t SELECT generate_series(1, 100)")
}

func (e *env) postmasterStart(node string) int64 {
	e.t.Helper()
	v, err := e.nodes[node].QueryInt("SELECT (extract(epoch FROM pg_postmaster_start_time()) * 1000000)::bigint")
	if err != nil {
		e.t.Fatalf("read the postmaster start of %s: %v", node, err)
	}
	return v
}

func failedStep(op api.Operation) string {
	for _, s := range op.Steps {
		if s.State == "failed" {
			return s.Name
		}
	}
	return ""
}

// cutDuringSwitchover starts a switchover from pg1 to pg2, cuts the
// streams of cut (pg2 among them) in front of step and returns the
// switchover once it ends, with pg1's postmaster start before it.
func (e *env) cutDuringSwitchover(step string, cut ...string) (api.Operation, int64) {
	e.t.Helper()
	started := e.postmasterStart("pg1")
	ref, release := e.switchoverHeldAt(step)
	defer release()
	for _, n := range cut {
		e.cutStream(n, "pg1")
	}
	release()
	return e.waitOperation(ref.ID, 90*time.Second), started
}

// TestSwitchover_TargetNotStreamingAtTheCheckpoint: a target whose stream
// broke after the switchover was accepted is found out before the old
// primary stops: the switchover fails at its checkpoint step, naming the
// target, and the primary never stopped taking writes. Every standby is
// cut off: while the step waits, the primary's lease goes on (it ran
// out, and the agent of a primary no standby acknowledged killed it).
func TestSwitchover_TargetNotStreamingAtTheCheckpoint(t *testing.T) {
	e := newEnv(t, ha.Config{})
	op, started := e.cutDuringSwitchover("checkpoint", "pg2", "pg3")
	if op.State != "failed" || failedStep(op) != "checkpoint" || !strings.Contains(op.Error, "pg2") {
		e.dump()
		t.Fatalf("switchover %+v, want failed at its checkpoint step naming pg2", op)
	}
	if got := e.postmasterStart("pg1"); got != started {
		t.Fatalf("pg1 was restarted (postmaster start %d, was %d): the old primary stopped for a target that could not catch up", got, started)
	}
	if p := e.primary(); p != "pg1" {
		t.Fatalf("primary %q, want pg1", p)
	}
	e.nodes["pg1"].Exec("INSERT INTO t VALUES (0)")
}

// TestSwitchover_TargetCutOffAtTheStop: a target whose stream breaks as
// the old primary stops cannot receive the shutdown checkpoint once the
// old primary's postmaster is gone. The switchover rolls back then,
// without waiting out its catch-up timeout: the old primary runs again as
// the primary, with every row.
func TestSwitchover_TargetCutOffAtTheStop(t *testing.T) {
	e := newEnv(t, ha.Config{})
	op, _ := e.cutDuringSwitchover("stop-old-primary", "pg2")
	if op.State != "failed" || failedStep(op) != "wait-target-caught-up" || !strings.Contains(op.Error, "pg1 has stopped") {
		e.dump()
		t.Fatalf("switchover %+v, want failed at wait-target-caught-up once pg1 has stopped", op)
	}
	e.waitFor(30*time.Second, "pg1 as primary", func() bool { return e.primary() == "pg1" })
	e.nodes["pg1"].Exec("INSERT INTO t VALUES (0)")
	if n := e.count("pg1"); n != 101 {
		t.Fatalf("rows on pg1: %d, want 101", n)
	}
}
