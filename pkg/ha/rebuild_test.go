package ha_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRejoin_RebuildsAFormerPrimaryThatCannotBeRewound kills the primary
// and removes its WAL before its rejoin runs, so that pg_rewind cannot
// work. The node is rebuilt from a fresh base backup of the new primary
// and streams again with every row; no copy of its data is left behind.
func TestRejoin_RebuildsAFormerPrimaryThatCannotBeRewound(t *testing.T) {
	e := newProvisionedShard(t)
	e.nodes["pg1"].Exec("INSERT INTO t SELECT generate_series(1, 100)")
	e.waitStandbyOf("pg2", "pg1", 30*time.Second)

	release := e.holdAgent("/v1/agent/rewind")
	e.nodes["pg1"].KillPostmaster()
	if next := e.waitPrimaryNot("pg1", 30*time.Second); next != "pg2" {
		t.Fatalf("new primary %s", next)
	}
	// The WAL pg_rewind would read is gone (the old primary's segments;
	// the archive never got the last, unfinished one).
	dir := e.nodes["pg1"].DataDir
	segs, err := filepath.Glob(filepath.Join(dir, "pg_wal", "0*"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("pg1's WAL segments: %v %v", segs, err)
	}
	for _, s := range segs {
		if err := os.Remove(s); err != nil {
			t.Fatal(err)
		}
	}
	e.nodes["pg2"].Exec("INSERT INTO t SELECT generate_series(101, 150)")
	release()

	e.waitStandbyOf("pg1", "pg2", 2*time.Minute)
	e.nodes["pg2"].Exec("INSERT INTO t SELECT generate_series(151, 160)")
	e.waitFor(30*time.Second, "pg1 replayed every row", func() bool {
		n, err := e.nodes["pg1"].QueryInt("SELECT count(*) FROM t")
		return err == nil && n == 160
	})
	ev := e.events("rebuilt from a fresh base backup of pg2")
	if len(ev) != 1 || ev[0].Kind != "rebuild" || ev[0].Node != "pg1" {
		e.dump()
		t.Fatalf("rebuild events %+v, want one for pg1", ev)
	}
	t.Log(ev[0].Message)
	for _, leftover := range []string{dir + ".old", dir + ".rebuild"} {
		if _, err := os.Stat(leftover); !os.IsNotExist(err) {
			t.Fatalf("%s is left behind: %v", leftover, err)
		}
	}
	e.waitShardState("healthy", 30*time.Second)
}
