package ha_test

import (
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/ha"
)

// TestFailover_AfterSwitchoverWhileStandbysKeepTheOldCheckpointTimeline
// switches over to pg2 and kills pg2 at once: the standbys have replayed
// timeline 2 but have not yet made a restartpoint on it, so their control
// files still name timeline 1. A standby is promoted all the same.
func TestFailover_AfterSwitchoverWhileStandbysKeepTheOldCheckpointTimeline(t *testing.T) {
	e := newEnv(t, ha.Config{})
	e.nodes["pg1"].Exec("CREATE TABLE t (id bigint primary key)")
	e.nodes["pg1"].Exec("INSERT INTO t SELECT generate_series(1, 100)")
	e.waitStandbyOf("pg2", "pg1", 10*time.Second)
	e.waitStandbyOf("pg3", "pg1", 10*time.Second)

	op := e.waitOperation(e.switchover("pg2").ID, 60*time.Second)
	if op.State != "succeeded" {
		e.dump()
		t.Fatalf("switchover %+v", op)
	}
	e.waitStandbyOf("pg1", "pg2", 30*time.Second)
	e.waitStandbyOf("pg3", "pg2", 30*time.Second)
	e.waitShardState("healthy", 30*time.Second)
	e.nodes["pg2"].Exec("INSERT INTO t SELECT generate_series(101, 110)")
	e.waitFor(10*time.Second, "pg3 replayed the new rows", func() bool {
		n, err := e.nodes["pg3"].QueryInt("SELECT count(*) FROM t")
		return err == nil && n == 110
	})

	e.nodes["pg2"].KillPostmaster()
	next := e.waitPrimaryNot("pg2", 30*time.Second)
	e.nodes[next].Exec("INSERT INTO t SELECT generate_series(111, 120)")
	if n := e.count(next); n != 120 {
		t.Fatalf("new primary %s has %d rows", next, n)
	}
	if sh := e.shard(); sh.Epoch != 3 {
		t.Fatalf("epoch %d after a switchover and a failover", sh.Epoch)
	}
}

// TestRejoin_CrashedStandbyComesBackAsAStandbyWithItsOwnWAL crashes a
// standby while the primary writes: it is started again as a standby,
// never rewound (a rewind's crash recovery would write WAL the primary
// never had), and streams the rows written while it was down.
func TestRejoin_CrashedStandbyComesBackAsAStandbyWithItsOwnWAL(t *testing.T) {
	e := newEnv(t, ha.Config{})
	e.nodes["pg1"].Exec("CREATE TABLE t (id bigint primary key)")
	e.nodes["pg1"].Exec("INSERT INTO t SELECT generate_series(1, 1000)")
	e.waitStandbyOf("pg3", "pg1", 10*time.Second)
	e.waitFor(10*time.Second, "pg3 replayed the rows", func() bool {
		n, err := e.nodes["pg3"].QueryInt("SELECT count(*) FROM t")
		return err == nil && n == 1000
	})

	e.nodes["pg3"].Crash()
	e.nodes["pg1"].Exec("INSERT INTO t SELECT generate_series(1001, 2000)")
	e.waitStandbyOf("pg3", "pg1", 60*time.Second)
	e.nodes["pg1"].Exec("INSERT INTO t SELECT generate_series(2001, 2010)")
	e.waitFor(10*time.Second, "pg3 replayed every row", func() bool {
		n, err := e.nodes["pg3"].QueryInt("SELECT count(*) FROM t")
		return err == nil && n == 2010
	})
	if ev := e.events("rewound"); len(ev) != 0 {
		t.Fatalf("a crashed standby was rewound: %+v", ev)
	}
	e.waitShardState("healthy", 30*time.Second)
}

// TestArchiving_FailureDegradesTheShardWithAnEvent makes the primary's
// archive_command fail: the shard degrades, the node says why, and an
// event records it; when archiving works again the shard is healthy.
func TestArchiving_FailureDegradesTheShardWithAnEvent(t *testing.T) {
	e := newEnv(t, ha.Config{})
	e.nodes["pg1"].Exec("ALTER SYSTEM SET archive_command = '/bin/false'")
	e.nodes["pg1"].Exec("SELECT pg_reload_conf()")
	e.nodes["pg1"].Exec("CREATE TABLE t (id bigint)")
	e.nodes["pg1"].Exec("SELECT pg_switch_wal()")
	e.waitShardState("degraded", 30*time.Second)
	for _, n := range e.shard().Nodes {
		if n.Name == "pg1" && (n.Status == nil || !strings.Contains(n.Status.ArchiveError, "failed")) {
			t.Fatalf("pg1 status %+v", n.Status)
		}
	}
	e.waitFor(10*time.Second, "an event for the archiving failure", func() bool { return len(e.events("pg1: WAL archiving fails")) == 1 })
	e.nodes["pg1"].Exec("ALTER SYSTEM SET archive_command = '/bin/true'")
	e.nodes["pg1"].Exec("SELECT pg_reload_conf()")
	e.waitShardState("healthy", 60*time.Second)
	e.waitFor(10*time.Second, "an event for the archiving recovery", func() bool { return len(e.events("pg1: WAL archiving works again")) == 1 })
}
