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

// TestFailover_PreemptsARoutineRepoint holds a repoint inside its step (as
// a standby that hangs would hold it) and kills the primary: the failover
// does not wait for the repoint; it stops it, records it cancelled and
// promotes. The standby is repointed at the new primary afterwards.
func TestFailover_PreemptsARoutineRepoint(t *testing.T) {
	e := newEnv(t, ha.Config{})
	e.waitStandbyOf("pg2", "pg1", 10*time.Second)
	e.waitStandbyOf("pg3", "pg1", 10*time.Second)
	held := make(chan struct{})
	var first atomic.Bool
	for _, r := range e.reps {
		r.HA.Executor().BeforeStep = func(ctx context.Context, op *meta.Operation, step string) {
			if op.Kind == "repoint" && first.CompareAndSwap(false, true) {
				close(held)
				<-ctx.Done()
			}
		}
	}
	// pg3 streams from nowhere: after the stream grace the leader repoints it.
	e.nodes["pg3"].Exec("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 connect_timeout=1'")
	e.nodes["pg3"].Exec("SELECT pg_reload_conf()")
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		e.dump()
		t.Fatal("no repoint of pg3 started")
	}

	e.nodes["pg1"].KillPostmaster()
	if next := e.waitPrimaryNot("pg1", 30*time.Second); next != "pg2" {
		t.Fatalf("new primary %s, want pg2 (pg3 was not streaming)", next)
	}
	var ops api.OperationList
	e.do("GET", "/v1/operations", nil, &ops)
	var repoint *api.Operation
	for i, op := range ops.Operations {
		if op.Kind == "repoint" && op.State == "cancelled" {
			repoint = &ops.Operations[i]
		}
	}
	if repoint == nil || !strings.HasPrefix(repoint.Error, "preempted: primary pg1 is down") {
		e.dump()
		t.Fatalf("the held repoint was not recorded as preempted: %+v", ops.Operations)
	}
	e.waitStandbyOf("pg3", "pg2", 60*time.Second)
	e.waitStandbyOf("pg1", "pg2", 60*time.Second)
}
