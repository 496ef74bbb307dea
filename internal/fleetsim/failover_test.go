package fleetsim_test

import (
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/fleetsim"
)

// TestFleet_FailoverWhileAnotherShardHangs runs a 3-replica manager group
// over 300 simulated nodes (100 shards of 3, each node with its agent,
// registered through the API): one shard's nodes all hang after accepting
// a connection while another shard's primary crashes. The crashed shard
// fails over to one of its standbys, which the other standby then streams
// from, and its old primary is fenced through its agent and rejoined as a
// standby of the new one; every other shard keeps its primary, and every
// primary's agent holds a lease.
func TestFleet_FailoverWhileAnotherShardHangs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a manager group")
	}
	f, g := newFleetGroup(t, 100)
	start := time.Now()
	g.register("fleet", f)
	t.Logf("registered %d nodes in %v", f.Nodes(), time.Since(start).Round(time.Millisecond))
	seen := map[string]bool{}
	g.waitFor(2*time.Minute, "every shard seen healthy", func() bool {
		for name, sh := range g.shards("fleet") {
			if sh.State == "healthy" {
				seen[name] = true
			}
		}
		return len(seen) == len(f.Shards)
	})

	// Outside its sweeps (every 10th round) a follower probes only the
	// primaries the leader asks about: over ten rounds of the leader's,
	// each follower probes the fleet about twice (it probed the
	// primaries each round, 4.3 times the fleet, before).
	// The window is measured again when the leader changed during it
	// (a loaded machine running the race detector may hold an election):
	// a replica that led for part of it probed every node each round.
	var leaderApp string
	var leaderProbes uint64
	for try := 1; ; try++ {
		id, term := g.leaderTerm()
		leaderApp = "clustermgr " + id
		for _, app := range f.ProbeApps() {
			f.Probes(app).Reset()
		}
		g.waitFor(time.Minute, "ten rounds of the leader's probes", func() bool {
			return f.Probes(leaderApp).Count() >= uint64(10*f.Nodes())
		})
		leaderProbes = f.Probes(leaderApp).Count()
		if id2, term2 := g.leaderTerm(); id2 == id && term2 == term {
			break
		}
		if try == 3 {
			t.Fatal("the leader changed during each of three windows")
		}
		t.Logf("the leader changed during the window (%s in term %d before); measuring again", id, term)
	}
	for _, app := range f.ProbeApps() {
		n := f.Probes(app).Count()
		t.Logf("%s probed %d times", app, n)
		if app != leaderApp && n*10 > leaderProbes*3 {
			t.Errorf("%s probed %d times while the leader (%s) probed %d: more than 3 in 10", app, n, leaderApp, leaderProbes)
		}
	}

	hung, crashed := f.Shards[7], f.Shards[42]
	for _, s := range hung.Servers {
		s.SetFault(fleetsim.Fault{Hang: true})
	}
	crashed.Crash(0)
	crashedAt := time.Now()
	var promoted *fleetsim.Node
	g.waitFor(90*time.Second, "a standby of "+crashed.Name+" promoted", func() bool {
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
	if crashed.Agents[0].Count("stop") == 0 {
		t.Error("the old primary was not fenced through its agent")
	}
	old := crashed.Nodes[0]
	g.waitFor(time.Minute, "the old primary rejoined as a standby of "+promoted.Name, func() bool {
		return !old.Primary() && old.Upstream() == promoted && crashed.Agents[0].Count("start") > 0
	})
	if crashed.Agents[0].Count("rewind") == 0 {
		t.Error("the old primary rejoined without a rewind")
	}

	// The leader renews the lease of every primary it sees up, the new
	// one's too.
	g.waitFor(10*time.Second, "a lease held by every primary's agent but the hung shard's", func() bool {
		for _, sh := range f.Shards {
			for i, n := range sh.Nodes {
				if sh != hung && n.Primary() && !sh.Agents[i].LeaseUntil().After(time.Now()) {
					return false
				}
			}
		}
		return true
	})

	// Every other shard keeps its primary; the hung one is not failed
	// over (no standby of it answers).
	for name, sh := range g.shards("fleet") {
		if name != crashed.Name && sh.Primary != "pg1" {
			t.Fatalf("%s failed over to %s", name, sh.Primary)
		}
	}
	for _, sh := range f.Shards {
		if sh != crashed && !sh.Nodes[0].Primary() {
			t.Fatalf("%s: pg1 is no longer the primary", sh.Name)
		}
	}
	if hung.Nodes[1].Primary() || hung.Nodes[2].Primary() {
		t.Fatal("a hung standby was promoted")
	}
}
