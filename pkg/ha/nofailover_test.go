package ha_test

import (
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/ha"
)

// holdsFor checks cond stays true for d, polling.
func (e *env) holdsFor(d time.Duration, what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			e.dump()
			e.t.Fatalf("%s stopped holding", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) lastDecision() string {
	sh := e.shard()
	if sh.LastDecision == nil {
		return ""
	}
	return sh.LastDecision.Reason
}

// TestNoFailover_WhileStandbyStillStreams cuts every manager's probes of
// the primary: all see it down, but the standbys still stream from it, so
// nothing is promoted.
func TestNoFailover_WhileStandbyStillStreams(t *testing.T) {
	e := newEnv(t, ha.Config{})
	for _, r := range e.reps {
		r.HA.Detector().SetBlock(func(key string) bool { return strings.HasSuffix(key, "/pg1") })
	}
	e.waitFor(10*time.Second, "a decision naming the streaming standby", func() bool {
		return strings.Contains(e.lastDecision(), "still receives WAL from it")
	})
	e.holdsFor(3*time.Second, "pg1 as the declared primary", func() bool {
		sh := e.shard()
		return sh.Primary == "pg1" && sh.Epoch == 1
	})
	if rec, err := e.nodes["pg2"].InRecovery(); err != nil || !rec {
		t.Fatalf("pg2 was promoted: %v %v", rec, err)
	}
	if len(e.events("still receives WAL")) == 0 {
		t.Fatal("the refusal is not in the events")
	}
}

// TestNoFailover_WhenOnlyTheLeaderCannotReachThePrimary cuts the leader's
// probes of the primary only: the followers still see it, so there is no
// majority and no failover.
func TestNoFailover_WhenOnlyTheLeaderCannotReachThePrimary(t *testing.T) {
	e := newEnv(t, ha.Config{})
	leader := e.leader()
	leader.HA.Detector().SetBlock(func(key string) bool { return strings.HasSuffix(key, "/pg1") })
	// Stop the standbys from streaming too, so that only the vote count
	// stands between the leader and a failover.
	for _, n := range []string{"pg2", "pg3"} {
		e.nodes[n].Exec("ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1 user=postgres'")
		e.nodes[n].Exec("SELECT pg_reload_conf()")
	}
	e.waitFor(10*time.Second, "a decision counting votes", func() bool {
		return strings.Contains(e.lastDecision(), "for 1 of 3 manager replicas")
	})
	e.holdsFor(3*time.Second, "pg1 as the declared primary", func() bool {
		sh := e.shard()
		return sh.Primary == "pg1" && sh.Epoch == 1
	})
}
