package fleetsim_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/fleetsim"
	"github.com/clustermgr/clustermgr/pkg/ha"
)

// TestFleet_FailoverWhileAnotherShardHangs runs a 3-replica manager group
// over 300 simulated nodes (100 shards of 3, registered through the API):
// one shard's nodes all hang after accepting a connection while another
// shard's primary crashes. The crashed shard fails over to one of its
// standbys, which the other standby then streams from; every other shard
// keeps its primary and stays healthy.
func TestFleet_FailoverWhileAnotherShardHangs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a manager group")
	}
	f, err := fleetsim.NewFleet("127.0.0.1", 100, 3, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := newGroup(t, ha.Config{ProbeInterval: 300 * time.Millisecond, ProbeTimeout: 500 * time.Millisecond, FailureThreshold: 3})
	start := time.Now()
	g.register("fleet", f)
	t.Logf("registered %d nodes in %v", f.Nodes(), time.Since(start).Round(time.Millisecond))
	g.waitFor(60*time.Second, "every shard healthy", func() bool {
		shards := g.shards("fleet")
		if len(shards) != len(f.Shards) {
			return false
		}
		for _, sh := range shards {
			if sh.State != "healthy" {
				return false
			}
		}
		return true
	})

	hung, crashed := f.Shards[7], f.Shards[42]
	for _, s := range hung.Servers {
		s.SetFault(fleetsim.Fault{Hang: true})
	}
	crashed.Nodes[0].Down()
	crashed.Servers[0].SetFault(fleetsim.Fault{Refuse: true})
	crashedAt := time.Now()
	var promoted *fleetsim.Node
	g.waitFor(60*time.Second, "a standby of "+crashed.Name+" promoted", func() bool {
		for _, n := range crashed.Nodes[1:] {
			if n.Primary() {
				promoted = n
				return true
			}
		}
		return false
	})
	promotedAfter := time.Since(crashedAt)
	other := crashed.Nodes[1]
	if other == promoted {
		other = crashed.Nodes[2]
	}
	g.waitFor(30*time.Second, "the new primary recorded and the other standby repointed", func() bool {
		sh := g.shards("fleet")[crashed.Name]
		return sh.Primary == promoted.Name && other.Upstream() == promoted
	})
	t.Logf("%s promoted %v after the crash (hung shard %s)", promoted.Name, promotedAfter.Round(time.Millisecond), hung.Name)

	// Every other shard keeps its primary and is healthy; the hung one
	// is not failed over (no standby of it answers).
	g.waitFor(30*time.Second, "the other shards healthy on their first primaries", func() bool {
		for name, sh := range g.shards("fleet") {
			switch name {
			case crashed.Name:
			case hung.Name:
				if sh.Primary != "pg1" {
					t.Fatalf("the hung shard failed over to %s", sh.Primary)
				}
			default:
				if sh.Primary != "pg1" || sh.State != "healthy" {
					return false
				}
			}
		}
		return true
	})
	for _, sh := range f.Shards {
		if sh != crashed && !sh.Nodes[0].Primary() {
			t.Fatalf("%s: pg1 is no longer the primary", sh.Name)
		}
	}
	if fmt.Sprint(hung.Nodes[1].Primary(), hung.Nodes[2].Primary()) != "false false" {
		t.Fatal("a hung standby was promoted")
	}
}
