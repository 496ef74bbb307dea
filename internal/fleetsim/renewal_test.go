package fleetsim_test

import (
	"testing"
	"time"
)

// TestFleet_StuckAgentsHoldBackNoRenewal: the agents of 150 of 200
// primaries take the leader's renewals and never answer (each holds the
// renewal for its whole timeout, more than the leader's renewal workers
// can carry); the other 50 primaries are still renewed every third of
// the lease.
func TestFleet_StuckAgentsHoldBackNoRenewal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a manager group")
	}
	f, g := newFleetGroup(t, 200)
	g.register("fleet", f)
	g.waitFor(2*time.Minute, "a lease held by every primary's agent", func() bool {
		for _, sh := range f.Shards {
			if !sh.Agents[0].LeaseUntil().After(time.Now()) {
				return false
			}
		}
		return true
	})
	stuck, free := f.Shards[:150], f.Shards[150:]
	for _, sh := range stuck {
		sh.Agents[0].Hang()
	}
	count := func() []uint64 {
		var out []uint64
		for _, sh := range free {
			out = append(out, sh.Agents[0].Count("lease"))
		}
		return out
	}
	before := count()
	const window = 5 * time.Second
	time.Sleep(window)
	after := count()
	// Every 0.5 s: about 10 in the window; a backlog behind the stuck
	// ones would let through a few at most.
	for i := range free {
		if n := after[i] - before[i]; n < 5 {
			t.Errorf("%s's primary renewed %d times in %v while other agents were stuck, want 5 or more", free[i].Name, n, window)
		}
	}
	for _, sh := range stuck {
		sh.Agents[0].Heal()
	}
}
