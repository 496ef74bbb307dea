package decision

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/status"
)

// TestDecide_FailoverPassesOverAStandbyThatWasNotStreaming is the loss
// seen when a crashed standby came back with WAL of its own: its LSN is
// the highest, but it was not streaming when the primary was last seen,
// so its position is not known to be on the primary's history. The
// standby that streamed until the end is promoted.
func TestDecide_FailoverPassesOverAStandbyThatWasNotStreaming(t *testing.T) {
	in := base()
	in.PrimarySeenAt = now.Add(-3 * time.Second)
	in.Views["pg2"] = NodeView{Health: status.Healthy, Sample: standby(101*gib, 1, 0), UpSince: now.Add(-6 * time.Second), StreamedAt: now.Add(-time.Minute)}
	in.Views["pg3"] = NodeView{Health: status.Healthy, Sample: standby(100*gib, 1, 0), UpSince: now.Add(-time.Hour), StreamedAt: now.Add(-3 * time.Second)}
	got := Decide(in)
	want := []Decision{{
		Kind: Failover, Node: "pg3",
		Reason: "primary pg1 is down (3 of 3 manager replicas agree); promote pg3: LSN 19/0 on timeline 1, priority 5",
		Candidates: []Candidate{
			{Node: "pg3", LSN: 100 * gib, Timeline: 1, Priority: 5, Chosen: true},
			{Node: "pg2", LSN: 101 * gib, Timeline: 1, Priority: 1,
				Rejected: "was not streaming when the primary was last seen: its position is not known to be on the primary's history"},
		},
	}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("Decide (-want +got):\n%s", d)
	}
}

// TestDecide_NoSyncSetChangeWhileThePrimaryIsSuspect: when the standbys
// stop streaming because the primary itself is failing, dropping the
// recorded synchronous standby would leave no candidate for the failover
// that follows. The set changes only under a healthy primary.
func TestDecide_NoSyncSetChangeWhileThePrimaryIsSuspect(t *testing.T) {
	in := healthy()
	in.SyncMode, in.SyncSet = meta.SyncOn, []string{"pg2"}
	in.Views["pg1"] = view(status.Suspect, primarySample(100*gib, `FIRST 1 ("pg2")`))
	in.Views["pg2"] = view(status.Healthy, standby(100*gib, 1, 0))
	in.Views["pg3"] = view(status.Healthy, standby(100*gib, 1, 0))
	if got := Decide(in); len(got) != 0 {
		t.Fatalf("decisions under a suspect primary: %+v", got)
	}
}

// TestDecide_FailoverRightAfterAPromotionInSyncMode: the promoted primary
// waited for any standby of the pool ('*'); no synchronous standby was
// recorded yet when it died. With every pool member seen, the most
// advanced is promoted; with one unseen, nothing is.
func TestDecide_FailoverRightAfterAPromotionInSyncMode(t *testing.T) {
	in := base()
	in.SyncMode, in.SyncPool = meta.SyncOn, []string{"pg2", "pg3"}
	in.Views["pg3"] = view(status.Healthy, standby(100*gib+10, 1, 0))
	got := Decide(in)
	want := []Decision{{Kind: Failover, Node: "pg3",
		Reason: "primary pg1 is down (3 of 3 manager replicas agree); promote pg3: LSN 19/A on timeline 1, priority 5",
		Candidates: []Candidate{
			{Node: "pg3", LSN: 100*gib + 10, Timeline: 1, Priority: 5, Chosen: true},
			{Node: "pg2", LSN: 100 * gib, Timeline: 1, Priority: 1, Lag: 10},
		}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("all of the pool seen (-want +got):\n%s", d)
	}

	in.Views["pg2"] = view(status.Down, nil)
	got = Decide(in)
	want = []Decision{{Kind: None,
		Reason: "primary pg1 is down; synchronous mode: one of [pg2, pg3] holds every acknowledged commit, but pg2 cannot be seen (down): no automatic failover",
		Candidates: []Candidate{
			{Node: "pg3", LSN: 100*gib + 10, Timeline: 1, Priority: 5},
			{Node: "pg2", Priority: 1, Rejected: "is not healthy (down)"},
		}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("a pool member unseen (-want +got):\n%s", d)
	}

	in = base()
	in.SyncMode, in.SyncPool = meta.SyncOn, []string{"pg2", "pg3"}
	in.Nodes[1].Tags = []string{meta.TagNoFailover} // pg2, the most advanced
	got = Decide(in)
	if len(got) != 1 || got[0].Kind != None {
		t.Fatalf("promoted behind the pool's most advanced member: %+v", got)
	}
}

// TestDecide_PrimarysLastSampleShowsItsStandbysStreaming is the
// observation gap seen on a loaded manager at 10,000 nodes: the leader's
// probes of the primary went on answering while those of its standbys
// were late, then the primary crashed. Neither standby had been seen
// streaming within the grace of the primary's last answer, so no standby
// could be promoted and the shard waited for an operator. The primary's
// own last sample lists a standby streaming from it: that is seeing it
// streaming too. One listed in another state (catching up) is not.
func TestDecide_PrimarysLastSampleShowsItsStandbysStreaming(t *testing.T) {
	in := base()
	in.PrimarySeenAt = now.Add(-3 * time.Second)
	last := primarySample(101*gib, "")
	last.At = in.PrimarySeenAt
	last.Replicas = []collector.Replica{{AppName: "pg2", State: "streaming"}, {AppName: "pg3", State: "catchup"}}
	in.Views["pg1"] = view(status.Down, last)
	in.Views["pg2"] = NodeView{Health: status.Healthy, Sample: standby(101*gib, 1, 0), UpSince: now.Add(-time.Hour), StreamedAt: now.Add(-20 * time.Second)}
	in.Views["pg3"] = NodeView{Health: status.Healthy, Sample: standby(100*gib, 1, 0), UpSince: now.Add(-time.Hour), StreamedAt: now.Add(-20 * time.Second)}
	in.Views["pg2"].Sample.At, in.Views["pg3"].Sample.At = now, now // read after the primary's last answer
	got := Decide(in)
	want := []Decision{{
		Kind: Failover, Node: "pg2",
		Reason: "primary pg1 is down (3 of 3 manager replicas agree); promote pg2: LSN 19/40000000 on timeline 1, priority 1",
		Candidates: []Candidate{
			{Node: "pg2", LSN: 101 * gib, Timeline: 1, Priority: 1, Chosen: true},
			{Node: "pg3", LSN: 100 * gib, Timeline: 1, Priority: 5,
				Rejected: "was not streaming when the primary was last seen: its position is not known to be on the primary's history"},
		},
	}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("Decide (-want +got):\n%s", d)
	}

	// A sample of the primary older than the grace before its last
	// answer says nothing of then.
	last.At = in.PrimarySeenAt.Add(-3 * time.Second)
	got = Decide(in)
	if len(got) != 1 || got[0].Kind != None {
		t.Fatalf("Decide on an old sample of the primary: %+v", got)
	}
	last.At = in.PrimarySeenAt

	// The standby's own sample must be read after the primary's last
	// answer: one from before (its probes late) may show less WAL than it
	// has, and a failover ranked on it could pass over more WAL.
	stale := in.Views["pg2"]
	stale.Sample = standby(101*gib, 1, 0)
	stale.Sample.At = in.PrimarySeenAt.Add(-time.Second)
	in.Views["pg2"] = stale
	if got = Decide(in); len(got) != 1 || got[0].Kind != None {
		t.Fatalf("Decide on a standby sample older than the primary's last: %+v", got)
	}

	// Nor may it show less than the primary saw it flush.
	stale.Sample.At = now
	in.Views["pg2"] = stale
	last.Replicas[0].FlushLSN = 101*gib + 1
	if got = Decide(in); len(got) != 1 || got[0].Kind != None {
		t.Fatalf("Decide on a standby behind what the primary saw it flush: %+v", got)
	}
}
