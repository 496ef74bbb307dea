package decision

import (
	"fmt"
	"slices"

	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/status"
)

// ManualCheck is the verdict on a manual failover.
type ManualCheck struct {
	// Allowed: the failover may start (safe, or unsafe and forced).
	Allowed bool `json:"allowed"`
	// Unsafe says why the target may lose acknowledged commits; "" when
	// it holds everything the shard is known to have.
	Unsafe string `json:"unsafe,omitempty"`
	// LossBytes is how far the target is behind the most advanced node
	// known (a live primary or the best healthy standby).
	LossBytes int64  `json:"expected_loss_bytes"`
	Reason    string `json:"reason"`
}

// CheckManualFailover judges a manual failover to target. The target must
// be a healthy standby in recovery. It is unsafe when it is behind the
// most advanced node known by more than max_lag_on_failover, or when
// synchronous mode records a synchronous set without it; an unsafe
// failover is allowed only when forced.
func CheckManualFailover(in Input, target string, force bool) ManualCheck {
	v := in.Views[target]
	if v.Health != status.Healthy || v.Sample == nil {
		return ManualCheck{Reason: fmt.Sprintf("%s is not a healthy standby (%s)", target, orUnknown(v.Health))}
	}
	if !v.Sample.InRecovery {
		return ManualCheck{Reason: target + " is not a standby in recovery"}
	}
	var best collector.LSN
	bestNode := target
	for _, n := range in.Nodes {
		nv := in.Views[n.Name]
		if nv.Health != status.Healthy || nv.Sample == nil {
			continue
		}
		if l := nv.Sample.LSN(); l > best {
			best, bestNode = l, n.Name
		}
	}
	c := ManualCheck{LossBytes: max(int64(best)-int64(v.Sample.LSN()), 0)}
	maxLag := in.MaxLag
	if maxLag <= 0 {
		maxLag = meta.DefaultMaxLagOnFailover
	}
	sync := in.SyncMode == meta.SyncOn || in.SyncMode == meta.SyncStrict
	switch {
	case sync && len(in.SyncSet) > 0 && !slices.Contains(in.SyncSet, target):
		c.Unsafe = fmt.Sprintf("%s is not in the synchronous set %v: it may lack acknowledged commits", target, in.SyncSet)
	case c.LossBytes > maxLag:
		c.Unsafe = fmt.Sprintf("%s is %d bytes behind %s (max_lag_on_failover %d)", target, c.LossBytes, bestNode, maxLag)
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
