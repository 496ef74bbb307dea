package ha_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/ha"
	"github.com/clustermgr/clustermgr/pkg/pgctl"
)

// TestFailover_HungPrimaryIsFencedAndRejoined freezes the primary (SIGSTOP
// of every server process: the port stays open, nothing answers). After
// the failure threshold a standby is promoted; the frozen primary is
// fenced, so once thawed it never takes a write, and it is rewound and
// rejoined as a standby.
func TestFailover_HungPrimaryIsFencedAndRejoined(t *testing.T) {
	e := newEnv(t, ha.Config{FailureThreshold: 3})
	e.nodes["pg1"].Exec("CREATE TABLE t (id bigint primary key)")
	e.nodes["pg1"].Exec("INSERT INTO t SELECT generate_series(1, 10)")
	e.waitStandbyOf("pg2", "pg1", 10*time.Second)

	e.nodes["pg1"].Freeze()
	start := time.Now()
	next := e.waitPrimaryNot("pg1", 30*time.Second)
	t.Logf("new primary %s after %v", next, time.Since(start))
	// SIGCONT to whatever is left of the old primary (the fence may
	// already have killed it).
	_ = pgctl.Kill(e.nodes["pg1"].DataDir, syscall.SIGCONT)
	// From now on the old primary must never be writable.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if rec, err := e.nodes["pg1"].InRecovery(); err == nil && !rec {
			t.Fatal("the old primary is writable after the failover")
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.nodes[next].Exec("INSERT INTO t SELECT generate_series(11, 20)")
	e.waitStandbyOf("pg1", next, 60*time.Second)
	e.waitFor(10*time.Second, "pg1 replicated the new rows", func() bool {
		n, err := e.nodes["pg1"].QueryInt("SELECT count(*) FROM t")
		return err == nil && n == 20
	})
	if len(e.events("failover")) == 0 || len(e.events("rejoin")) == 0 {
		e.dump()
		t.Fatal("no failover or rejoin operation in the events")
	}
}
