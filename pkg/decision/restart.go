package decision

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/status"
)

// RestartRequest is what an operator asks to restart: one node, or the
// whole shard node by node (Rolling), and then only the nodes with a
// parameter pending a restart (OnlyPending).
type RestartRequest struct {
	Node        string
	Rolling     bool
	OnlyPending bool
}

// RestartPlan is the order in which a restart takes a shard's nodes.
type RestartPlan struct {
	// PrimaryFirst restarts the primary in place before any standby:
	// when a parameter a standby may not hold lower than its primary
	// (StandbyAtLeast) decreases. It costs a write outage of one restart.
	PrimaryFirst bool `json:"primary_first,omitempty"`
	// Standbys are restarted one at a time, in this order, each streaming
	// again before the next.
	Standbys []string `json:"standbys,omitempty"`
	// Switchover ends the restart with a switchover, which restarts the
	// old primary as a standby: the primary's restart costs one
	// switchover's write gap.
	Switchover bool   `json:"switchover,omitempty"`
	Reason     string `json:"reason"`
}

// StandbyAtLeast returns the parameters PostgreSQL requires a hot standby
// to hold at least as high as its primary: an increase reaches the
// standbys first, a decrease the primary first.
func StandbyAtLeast() []string {
	return []string{"max_connections", "max_prepared_transactions", "max_locks_per_transaction", "max_wal_senders", "max_worker_processes"}
}

// Decreased names the StandbyAtLeast parameters whose wanted value is
// below the primary's current one.
func Decreased(want, current map[string]string) []string {
	var out []string
	for _, k := range StandbyAtLeast() {
		w, err1 := strconv.ParseInt(strings.TrimSpace(want[k]), 10, 64)
		c, err2 := strconv.ParseInt(strings.TrimSpace(current[k]), 10, 64)
		if err1 == nil && err2 == nil && w < c {
			out = append(out, k)
		}
	}
	return out
}

// PlanRestart orders a restart of the shard. pending are the parameters
// each node needs a restart for; decreased the StandbyAtLeast parameters
// that go down (Decreased). It refuses (a reason and no plan) a request
// it cannot carry out safely.
func PlanRestart(in Input, req RestartRequest, pending map[string][]string, decreased []string) (RestartPlan, string) {
	p := in.primary()
	if p == nil {
		return RestartPlan{}, "the shard has no primary"
	}
	if req.Node != "" {
		if req.Rolling || req.OnlyPending {
			return RestartPlan{}, "a node is restarted alone: rolling and only_pending are for the whole shard"
		}
		i := slices.IndexFunc(in.Nodes, func(n meta.Node) bool { return n.Name == req.Node })
		if i < 0 {
			return RestartPlan{}, fmt.Sprintf("node %q is not in the shard", req.Node)
		}
		if in.Nodes[i].Role == meta.RolePrimary {
			return RestartPlan{PrimaryFirst: true, Reason: fmt.Sprintf("restart primary %s in place (writes pause while it restarts; a rolling restart switches over instead)", p.Name)}, ""
		}
		if h := in.Views[req.Node].Health; h != status.Healthy {
			return RestartPlan{}, fmt.Sprintf("standby %s is not healthy (%s): rejoin it instead", req.Node, orUnknown(h))
		}
		return RestartPlan{Standbys: []string{req.Node}, Reason: "restart standby " + req.Node}, ""
	}
	if !req.Rolling {
		return RestartPlan{}, `a shard restarts node by node: ask for {"rolling": true} or name a node`
	}
	wanted := func(name string) bool { return !req.OnlyPending || len(pending[name]) > 0 }
	var plan RestartPlan
	var async, sync []string
	for _, n := range in.Nodes {
		if n.Role == meta.RolePrimary || !wanted(n.Name) || n.Maintenance {
			continue // a node in maintenance is its operator's to restart
		}
		if h := in.Views[n.Name].Health; h != status.Healthy {
			return RestartPlan{}, fmt.Sprintf("standby %s is not healthy (%s): rejoin it first", n.Name, orUnknown(h))
		}
		if slices.Contains(in.SyncSet, n.Name) {
			sync = append(sync, n.Name)
		} else {
			async = append(async, n.Name)
		}
	}
	// The synchronous standbys last: while one restarts, commits wait
	// (strict) or the set changes (on).
	plan.Standbys = append(async, sync...)
	primary := wanted(p.Name)
	switch {
	case !primary && len(plan.Standbys) == 0:
		return RestartPlan{}, "no node has a parameter pending a restart"
	case primary && len(decreased) > 0:
		plan.PrimaryFirst = true
		plan.Reason = fmt.Sprintf("%s decreases: primary %s restarts first, in place (a standby may not hold less than its primary), then the standbys one at a time", strings.Join(decreased, ", "), p.Name)
	case primary:
		plan.Switchover = true
		plan.Reason = fmt.Sprintf("the standbys one at a time, then a switchover that restarts primary %s as a standby", p.Name)
	default:
		plan.Reason = fmt.Sprintf("the standbys with a restart pending, one at a time; primary %s needs none", p.Name)
	}
	return plan, ""
}
