package decision

import (
	"fmt"

	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/status"
)

// reference is the timeline whose history a node to promote must be on:
// the primary's last known timeline or, when that is not known (the
// primary was never sampled by this leader, or no primary is declared),
// the highest timeline among the healthy standbys in recovery. A standby
// on a later timeline proves a promotion that the others have not
// followed, and WAL on the older timeline past the fork is not on the new
// history.
type reference struct {
	Timeline uint32
	// Standby names the standby that shows Timeline when the primary's
	// timeline is not known; "" when Timeline is the primary's.
	Standby string
	// History is the primary's timeline history when known: a node on an
	// earlier timeline of it, at or before the switch, is on it too.
	History []collector.TimelineSwitch
}

func referenceTimeline(in Input) reference {
	if in.PrimaryTimeline != 0 {
		return reference{Timeline: in.PrimaryTimeline, History: in.PrimaryHistory}
	}
	var r reference
	for _, n := range in.Nodes {
		if n.Role != meta.RoleStandby {
			continue
		}
		if v := in.Views[n.Name]; isStandbyInRecovery(v) && v.Sample.Timeline > r.Timeline {
			r = reference{Timeline: v.Sample.Timeline, Standby: n.Name}
		}
	}
	return r
}

// rejects says why a node at lsn on timeline tl is not on the
// reference's history, as a candidate's rejection; "" when it is (or when
// no timeline is known at all). A node on an earlier timeline of the
// primary's history, exactly where the history switched from it, is on
// it: it has not followed a promotion yet (see collector.OnHistory).
func (r reference) rejects(tl uint32, lsn collector.LSN) string {
	switch {
	case r.Timeline == 0 || tl == r.Timeline:
		return ""
	case r.Standby == "" && tl < r.Timeline && collector.OnHistory(r.History, tl, lsn):
		return ""
	case r.Standby == "" && tl < r.Timeline && len(r.History) > 0:
		for _, sw := range r.History {
			if sw.Timeline == tl {
				return fmt.Sprintf("is on timeline %d at %s, not at %s where the primary's history left it for the next timeline (only a standby at that point is known to hold nothing but the primary's history)", tl, lsn, sw.Switch)
			}
		}
		return fmt.Sprintf("is on timeline %d, which is not in the primary's history (timeline %d)", tl, r.Timeline)
	case r.Standby == "":
		return fmt.Sprintf("is on timeline %d, not the primary's %d", tl, r.Timeline)
	default:
		return fmt.Sprintf("is on timeline %d while standby %s is on timeline %d: it has not followed a promotion, so its WAL past the fork is not on the new history (the primary's timeline is not known)",
			tl, r.Standby, r.Timeline)
	}
}

func isStandbyInRecovery(v NodeView) bool {
	return v.Health == status.Healthy && v.Sample != nil && v.Sample.InRecovery
}

// notStreamingAtPrimaryDeath reports whether standby name was not seen
// streaming when the primary was last seen: its position may then be WAL
// of its own, not known to be on the primary's history. It was seen
// streaming when its own probe found its receiver streaming within the
// stream grace of the primary's last answer, or when the primary's own
// sample from then lists it streaming (pg_stat_replication, physical
// walsenders only), provided the standby's own sample was read after that
// one and shows at least the WAL the primary saw it flush: a manager
// whose probes of the standbys fell behind while those of the primary
// still answered (the manager short of CPU, a blip towards the standbys
// only) then has no gap in what it knows, and ranks the standby on a
// position it has had since.
func notStreamingAtPrimaryDeath(in Input, name string, v NodeView) bool {
	if in.PrimarySeenAt.IsZero() {
		return false
	}
	since := in.PrimarySeenAt.Add(-in.StreamGrace)
	if !v.StreamedAt.Before(since) {
		return false
	}
	if p := in.primary(); p != nil {
		s := in.Views[p.Name].Sample
		if s == nil || s.InRecovery || s.At.Before(since) || v.Sample == nil || v.Sample.At.Before(s.At) {
			return true
		}
		for _, r := range s.Replicas {
			if r.AppName == name && r.State == "streaming" && v.Sample.LSN() >= r.FlushLSN {
				return false
			}
		}
	}
	return true
}

// position is a WAL position the shard is known to have reached, and
// where it was seen.
type position struct {
	LSN collector.LSN
	// Node showed it; Primary is set when it is the declared primary's
	// last sample.
	Node    string
	Primary bool
}

func (p position) String() string {
	if p.Primary {
		return "the primary's last known position " + p.LSN.String()
	}
	return p.Node + " at " + p.LSN.String()
}

// primaryPosition is the declared primary's last sampled position, when
// that sample is not in recovery and is on the reference timeline.
func primaryPosition(in Input, ref reference) (position, bool) {
	p := in.primary()
	if p == nil {
		return position{}, false
	}
	s := in.Views[p.Name].Sample
	if s == nil || s.InRecovery || ref.rejects(s.Timeline, s.CurrentLSN) != "" {
		return position{}, false
	}
	return position{LSN: s.CurrentLSN, Node: p.Name, Primary: true}, true
}

// bestKnownPosition is the most advanced position the shard is known to
// have reached on the reference timeline: the primary's last sampled
// position and that of every healthy standby in recovery on that timeline,
// whether or not it may be promoted (nofailover, outside the synchronous
// set). It leaves out a standby on another timeline and one that was not
// streaming when the primary was last seen: neither position is known to
// be on the primary's history. The primary is named on a tie.
func bestKnownPosition(in Input, ref reference) position {
	best, _ := primaryPosition(in, ref)
	for _, n := range in.Nodes {
		if n.Role != meta.RoleStandby {
			continue
		}
		v := in.Views[n.Name]
		if !isStandbyInRecovery(v) || ref.rejects(v.Sample.Timeline, v.Sample.LSN()) != "" || notStreamingAtPrimaryDeath(in, n.Name, v) {
			continue
		}
		if l := v.Sample.LSN(); l > best.LSN {
			best = position{LSN: l, Node: n.Name}
		}
	}
	return best
}

// behind is how many bytes lsn is behind pos, never negative.
func behind(pos position, lsn collector.LSN) int64 {
	return max(int64(pos.LSN)-int64(lsn), 0)
}

func maxLag(in Input) int64 {
	if in.MaxLag <= 0 {
		return meta.DefaultMaxLagOnFailover
	}
	return in.MaxLag
}
