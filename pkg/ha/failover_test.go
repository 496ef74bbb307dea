package ha_test

import (
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/ha"
)

// TestFailover_SIGKILLOfPrimaryPromotesAStandby kills the primary's
// postmaster: a standby is promoted, the other follows it, the API reports
// the new primary, writes succeed there, and the old primary is rewound
// and rejoined as a standby.
func TestFailover_SIGKILLOfPrimaryPromotesAStandby(t *testing.T) {
	e := newEnv(t, ha.Config{})
	e.nodes["pg1"].Exec("CREATE TABLE t (id bigint primary key)")
	e.nodes["pg1"].Exec("INSERT INTO t SELECT generate_series(1, 100)")
	e.waitStandbyOf("pg2", "pg1", 10*time.Second)
	e.waitStandbyOf("pg3", "pg1", 10*time.Second)

	e.nodes["pg1"].KillPostmaster()
	start := time.Now()
	next := e.waitPrimaryNot("pg1", 30*time.Second)
	t.Logf("new primary %s after %v", next, time.Since(start))
	other := map[string]string{"pg2": "pg3", "pg3": "pg2"}[next]

	e.nodes[next].Exec("INSERT INTO t SELECT generate_series(101, 110)")
	if n := e.count(next); n != 110 {
		t.Fatalf("new primary has %d rows", n)
	}
	e.waitStandbyOf(other, next, 30*time.Second)
	e.waitFor(10*time.Second, other+" replicated the new rows", func() bool {
		n, err := e.nodes[other].QueryInt("SELECT count(*) FROM t")
		return err == nil && n == 110
	})
	sh := e.shard()
	if sh.Primary != next || sh.Epoch != 2 {
		t.Fatalf("shard after failover: primary %s epoch %d", sh.Primary, sh.Epoch)
	}
	// The old primary comes back as a standby of the new one.
	e.waitStandbyOf("pg1", next, 60*time.Second)
	e.waitFor(10*time.Second, "pg1 replicated the new rows", func() bool {
		n, err := e.nodes["pg1"].QueryInt("SELECT count(*) FROM t")
		return err == nil && n == 110
	})
	if len(e.events("is the primary at epoch 2")) != 1 {
		t.Fatal("no promotion event")
	}
	e.waitShardState("healthy", 30*time.Second)
}
