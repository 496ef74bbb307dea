package ha_test

import (
	"context"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/ha"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// TestFailover_NewPrimaryDiesBeforeTheStandbysFollowIt switches over to
// pg2 and kills pg2 the moment its promotion is recorded, before pg3 (or
// pg1, restarted as a standby) streams from it: both stay on timeline 1 at
// or before the point where pg2's timeline 2 branched off. That history
// holds all of pg2's timeline up to the branch, so a standby is promoted,
// on a timeline of its own (3, not a second timeline 2), with every row
// written before the switchover, and pg2 comes back as its standby.
func TestFailover_NewPrimaryDiesBeforeTheStandbysFollowIt(t *testing.T) {
	e := newEnv(t, ha.Config{})
	e.nodes["pg1"].Exec("CREATE TABLE t (id bigint primary key)")
	e.nodes["pg1"].Exec("INSERT INTO t SELECT generate_series(1, 100)")
	e.waitStandbyOf("pg2", "pg1", 10*time.Second)
	e.waitStandbyOf("pg3", "pg1", 10*time.Second)

	// Watch the replicas' own state (no HTTP round trip) and kill pg2 as
	// soon as any of them records it as the primary.
	killed := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer close(killed)
		for ctx.Err() == nil {
			for _, r := range e.live() {
				promoted := false
				_ = r.Store.View(ctx, meta.Stale, func(st *meta.State) error {
					if c := st.Clusters["app"]; c != nil {
						if sh := c.Shards["s1"]; sh != nil {
							p := sh.Primary()
							promoted = p != nil && p.Name == "pg2"
						}
					}
					return nil
				})
				if promoted {
					e.nodes["pg2"].Crash()
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	e.switchover("pg2")
	select {
	case <-killed:
	case <-time.After(60 * time.Second):
		t.Fatal("pg2 was never recorded as the primary")
	}
	tl3, err := e.nodes["pg3"].QueryInt("SELECT received_tli FROM pg_stat_wal_receiver UNION ALL SELECT 0 LIMIT 1")
	t.Logf("pg3's WAL receiver timeline when pg2 died: %d (%v)", tl3, err)

	next := e.waitPrimaryNot("pg2", 30*time.Second)
	if n := e.count(next); n != 100 {
		t.Fatalf("new primary %s has %d rows, want 100", next, n)
	}
	tl, err := e.nodes[next].QueryInt("SELECT timeline_id FROM pg_control_checkpoint()")
	if err != nil {
		t.Fatal(err)
	}
	walTL, err := e.nodes[next].QueryInt("SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int")
	if err != nil {
		t.Fatal(err)
	}
	if max(tl, walTL) <= 2 {
		t.Fatalf("%s was promoted onto timeline %d: pg2's timeline 2 has another history", next, max(tl, walTL))
	}
	e.nodes[next].Exec("INSERT INTO t SELECT generate_series(101, 110)")

	// pg2 comes back as a standby of the new primary, with its rows.
	e.waitStandbyOf("pg2", next, 90*time.Second)
	e.waitFor(30*time.Second, "pg2 replayed the new primary's rows", func() bool {
		n, err := e.nodes["pg2"].QueryInt("SELECT count(*) FROM t")
		return err == nil && n == 110
	})
	e.waitShardState("healthy", 60*time.Second)
}
