package decision

import (
	"fmt"
	"slices"
	"strings"

	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/status"
)

// ManualCheck is the verdict on a manual failover.
type ManualCheck struct {
	// Allowed: the failover may start (safe, or unsafe and forced).
	Allowed bool `json:"allowed"`
	// Unsafe says why the target may lose acknowledged commits; "" when
	// it holds everything the shard is known to have.
	Unsafe string `json:"unsafe,omitempty"`
	// LossBytes is how far the target is behind the best known position
	// (the one the automatic failover measures lag against); 0 when the
	// target is on another timeline, where it cannot be computed.
	LossBytes int64  `json:"expected_loss_bytes"`
	Reason    string `json:"reason"`
}

// CheckManualFailover judges a manual failover to target. The target must
// be a healthy standby in recovery with a sample. It is unsafe when it is
// not on the reference timeline, when synchronous mode records a
// synchronous set without it, when synchronous mode records only the pool
// of a promotion and the target is not its most advanced member with
// every member seen, or when it is behind the best known position by more
// than max_lag_on_failover: the same things the automatic failover counts.
// An unsafe failover is allowed only when forced.
func CheckManualFailover(in Input, target string, force bool) ManualCheck {
	v := in.Views[target]
	switch {
	case inMaintenance(in, target):
		return ManualCheck{Reason: target + " is in maintenance: take it out of maintenance first"}
	case v.Health != status.Healthy:
		return ManualCheck{Reason: fmt.Sprintf("%s is not a healthy standby (%s)", target, orUnknown(v.Health))}
	case v.Sample == nil:
		return ManualCheck{Reason: target + " is healthy but has not been sampled: its position is not known"}
	case !v.Sample.InRecovery:
		return ManualCheck{Reason: target + " is not a standby in recovery"}
	}
	ref := referenceTimeline(in)
	lsn := v.Sample.LSN()
	offTimeline := ref.rejects(v.Sample.Timeline, lsn)
	var c ManualCheck
	var best position
	if offTimeline == "" {
		best = bestKnownPosition(in, ref)
		c.LossBytes = behind(best, lsn)
	}
	sync := syncMode(in)
	switch {
	case offTimeline != "":
		c.Unsafe = target + " " + offTimeline + "; what was written after the fork would be lost, how much cannot be computed across timelines"
	case sync && len(in.SyncSet) > 0 && !slices.Contains(in.SyncSet, target):
		c.Unsafe = fmt.Sprintf("%s is not in the synchronous set %v: it may lack acknowledged commits", target, in.SyncSet)
	case sync && len(in.SyncSet) == 0 && len(in.SyncPool) > 0:
		c.Unsafe = poolUnsafe(in, target, lsn)
	}
	if c.Unsafe == "" && c.LossBytes > maxLag(in) {
		c.Unsafe = fmt.Sprintf("%s is %d bytes behind %s (max_lag_on_failover %d)", target, c.LossBytes, best, maxLag(in))
	}
	switch {
	case c.Unsafe == "":
		c.Allowed, c.Reason = true, fmt.Sprintf("manual failover to %s (%d bytes behind the most advanced node)", target, c.LossBytes)
	case force:
		c.Allowed, c.Reason = true, "forced manual failover to "+target+" although "+c.Unsafe
	default:
		c.Reason = c.Unsafe + "; add \"force\": true to accept the loss"
	}
	return c
}

// poolUnsafe says why target, at lsn, may lack acknowledged commits when
// only the pool of a promotion in synchronous mode is recorded: one member
// holds every acknowledged commit, and only the most advanced member with
// every member seen is known to be it. "" when target is that member.
func poolUnsafe(in Input, target string, lsn collector.LSN) string {
	pool := strings.Join(in.SyncPool, ", ")
	if why := poolUnseen(in); why != "" {
		return fmt.Sprintf("synchronous mode: one of [%s] holds every acknowledged commit, but %s, so %s may lack acknowledged commits", pool, why, target)
	}
	if !slices.Contains(in.SyncPool, target) {
		return fmt.Sprintf("%s is not in the synchronous pool [%s]: it may lack acknowledged commits", target, pool)
	}
	if n, l, ok := poolAhead(in, lsn); ok {
		return fmt.Sprintf("synchronous mode: %s of the pool [%s] is more advanced (%s) than %s (%s), so %s may lack acknowledged commits", n, pool, l, target, lsn, target)
	}
	return ""
}
