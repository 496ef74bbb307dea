package ha_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/ha"
)

// TestManualFailover_WhileAutomaticFailoverIsPaused pauses the cluster,
// kills the primary, sees the leader refuse to act, and promotes a chosen
// standby by hand.
func TestManualFailover_WhileAutomaticFailoverIsPaused(t *testing.T) {
	e := newEnv(t, ha.Config{})
	e.mustDo("PATCH", "/v1/clusters/app", map[string]any{"auto_failover": false}, http.StatusOK, nil)
	e.nodes["pg1"].Crash()
	e.waitFor(15*time.Second, "the paused decision", func() bool {
		return strings.Contains(e.lastDecision(), "automatic failover is paused")
	})
	e.holdsFor(2*time.Second, "pg1 still declared", func() bool { return e.shard().Primary == "pg1" })
	if e.primary() != "" {
		t.Fatal("GET primary answered while the primary is down")
	}
	status, body := e.do("POST", "/v1/clusters/app/shards/s1/failover", map[string]any{}, nil)
	if status != http.StatusBadRequest || !strings.Contains(string(body), `"field":"to"`) {
		t.Fatalf("failover without a target: %d %s", status, body)
	}
	var ref api.OperationRef
	e.mustDo("POST", "/v1/clusters/app/shards/s1/failover", map[string]any{"to": "pg3"}, http.StatusAccepted, &ref)
	op := e.waitOperation(ref.ID, 30*time.Second)
	if op.State != "succeeded" || op.Kind != "manual-failover" {
		e.dump()
		t.Fatalf("manual failover %+v", op)
	}
	e.waitFor(10*time.Second, "pg3 as primary", func() bool { return e.primary() == "pg3" })
	e.waitStandbyOf("pg2", "pg3", 30*time.Second)
	var nodeDown, shardPaused bool
	for _, ev := range e.events("") {
		nodeDown = nodeDown || (ev.Kind == "node_health" && ev.Node == "pg1" && strings.Contains(ev.Message, "down"))
		shardPaused = shardPaused || (ev.Kind == "shard_state" && strings.Contains(ev.Message, "paused"))
	}
	if !nodeDown || !shardPaused {
		e.dump()
		t.Fatal("health and shard state transitions are not in the events")
	}
}

// TestManualFailover_RefusesALaggingStandbyUnlessForced stops pg3's WAL
// receiver while the primary writes: a manual failover to pg3 is refused
// with 409 and the expected loss in bytes, and goes through with force,
// which the event records.
func TestManualFailover_RefusesALaggingStandbyUnlessForced(t *testing.T) {
	e := newEnv(t, ha.Config{})
	e.mustDo("PATCH", "/v1/clusters/app", map[string]any{"auto_failover": false}, http.StatusOK, nil)
	e.mustDo("PATCH", "/v1/clusters/app/shards/s1", map[string]any{"max_lag_on_failover": 65536}, http.StatusOK, nil)
	e.nodes["pg3"].Exec("ALTER SYSTEM SET primary_conninfo = ''")
	e.nodes["pg3"].Exec("SELECT pg_reload_conf()")
	e.nodes["pg1"].Exec("CREATE TABLE t (id bigint primary key, pad text)")
	e.nodes["pg1"].Exec("INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 10000) g")
	e.waitFor(15*time.Second, "pg3 seen lagging", func() bool {
		for _, n := range e.shard().Nodes {
			if n.Name == "pg3" && n.Status != nil && n.Status.LagBytes > 65536 {
				return true
			}
		}
		return false
	})

	status, body := e.do("POST", "/v1/clusters/app/shards/s1/failover", map[string]any{"to": "pg3"}, nil)
	var p api.Problem
	if err := jsonUnmarshal(body, &p); err != nil || status != http.StatusConflict || p.ExpectedLossBytes == nil || *p.ExpectedLossBytes <= 65536 ||
		!strings.Contains(p.Detail, "max_lag_on_failover 65536") {
		t.Fatalf("failover to a lagging standby: %d %s", status, body)
	}
	if e.shard().Primary != "pg1" {
		t.Fatal("a refused failover changed the primary")
	}
	var ref api.OperationRef
	e.mustDo("POST", "/v1/clusters/app/shards/s1/failover", map[string]any{"to": "pg3", "force": true}, http.StatusAccepted, &ref)
	if op := e.waitOperation(ref.ID, 30*time.Second); op.State != "succeeded" || !strings.Contains(op.Reason, "forced manual failover to pg3") {
		e.dump()
		t.Fatalf("forced failover %+v", op)
	}
	if len(e.events("forced manual failover to pg3")) == 0 {
		t.Fatal("no event records the forced failover")
	}
}
