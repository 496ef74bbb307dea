package action

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/decision"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// RejoinSpec is the request of a rejoin operation.
type RejoinSpec struct {
	// Diverged: the node cannot follow the primary as it is (it accepted
	// writes as a declared standby, did not stream from a live primary, or
	// an operator asked for the rejoin): it is rewound.
	Diverged bool `json:"diverged,omitempty"`
	// Plan is chosen by the first step from what the agent reports and
	// kept, so that a resumed operation follows the same plan.
	Plan *decision.RejoinPlan `json:"plan,omitempty"`
}

func rejoinSpec(x *opContext) (RejoinSpec, error) {
	var spec RejoinSpec
	if len(x.op.Spec) == 0 {
		return spec, nil
	}
	if err := json.Unmarshal(x.op.Spec, &spec); err != nil {
		return spec, fmt.Errorf("decode rejoin spec: %w", err)
	}
	return spec, nil
}

// rejoinPlan returns the plan recorded in the operation, choosing it first
// from the agent's report when there is none yet.
func rejoinPlan(ctx context.Context, x *opContext) (decision.RejoinPlan, error) {
	spec, err := rejoinSpec(x)
	if err != nil {
		return decision.RejoinPlan{}, err
	}
	if spec.Plan != nil {
		return *spec.Plan, nil
	}
	n, a, err := x.nodeAgent(x.op.Target)
	if err != nil {
		return decision.RejoinPlan{}, err
	}
	st, err := a.Status(ctx, n.DataDir)
	if err != nil {
		return decision.RejoinPlan{}, err
	}
	plan := decision.PlanRejoin(decision.RejoinFacts{Running: st.Running, StandbySignal: st.Standby,
		ClusterState: st.Control.ClusterState, Diverged: spec.Diverged})
	spec.Plan = &plan
	raw, err := json.Marshal(spec)
	if err != nil {
		return plan, err
	}
	x.op.Spec = raw
	return plan, nil
}

// rejoinTarget returns the rejoin's plan, node and agent.
func rejoinTarget(ctx context.Context, x *opContext) (decision.RejoinPlan, meta.Node, Agent, error) {
	plan, err := rejoinPlan(ctx, x)
	if err != nil {
		return plan, meta.Node{}, nil, err
	}
	n, a, err := x.nodeAgent(x.op.Target)
	return plan, n, a, err
}

// fenceNode stops the node as its rejoin plan says: a writable one is
// killed, a diverged standby stopped cleanly, a standby left running.
func fenceNode(ctx context.Context, x *opContext) (string, error) {
	plan, n, a, err := rejoinTarget(ctx, x)
	if err != nil {
		return "", err
	}
	if plan.Fence == decision.FenceNone {
		return plan.Reason, nil
	}
	st, err := a.Status(ctx, n.DataDir)
	if err != nil {
		return "", err
	}
	if !st.Running {
		return plan.Reason + "; " + n.Name + " is not running", nil
	}
	if _, err := a.Stop(ctx, n.DataDir, x.op.Epoch, plan.Fence); err != nil {
		return "", err
	}
	return plan.Reason + "; stopped " + n.Name + " (" + plan.Fence + ")", nil
}

// rewindNode rewinds the node from the primary when the plan says so, and
// configures it as the primary's standby either way. When pg_rewind fails
// (the WAL it needs is gone), the node is rebuilt from a fresh base backup
// of the primary, its old data kept until the copy is complete; with
// NoRebuild the rejoin fails instead.
func rewindNode(ctx context.Context, x *opContext) (string, error) {
	plan, n, a, err := rejoinTarget(ctx, x)
	if err != nil {
		return "", err
	}
	p := x.shard.Primary()
	if p == nil {
		return "", fmt.Errorf("shard has no primary to rejoin %s to", n.Name)
	}
	slot := slotOf(x.shard, n.Name)
	if slot != "" {
		if err := ensureSlots(ctx, x.cluster, *p, []string{n.Name}); err != nil {
			return "", err
		}
	}
	conninfo := ConnInfo(x.cluster, *p, n.Name)
	if !plan.Rewind {
		if _, err := a.ConfigureStandby(ctx, n.DataDir, x.op.Epoch, conninfo, slot); err != nil {
			return "", err
		}
		return "no rewind: configured as a standby of " + p.Name, nil
	}
	res, err := a.Rewind(ctx, n.DataDir, x.op.Epoch, conninfo, slot)
	// Only pg_rewind itself failing (the agent ran it: 500) calls for a
	// rebuild; an agent that cannot be reached, a refused token or bad
	// input does not.
	var aerr *agent.Error
	rewindFailed := errors.As(err, &aerr) && aerr.Status == http.StatusInternalServerError
	if err != nil && !rewindFailed {
		return "", fmt.Errorf("pg_rewind of %s from %s: %w", n.Name, p.Name, err)
	}
	if err != nil && x.e.NoRebuild {
		return "", fmt.Errorf("pg_rewind of %s from %s failed, and ha.rebuild_on_rewind_failure is off; reinit it: %w", n.Name, p.Name, err)
	}
	if err != nil {
		x.e.Log.Warn("pg_rewind failed; rebuilding the node from a fresh base backup", "cluster", x.op.Cluster, "shard", x.op.Shard, "node", n.Name, "err", err)
		if _, rerr := a.Rebuild(ctx, n.DataDir, x.op.Epoch, conninfo, slot); rerr != nil {
			return "", fmt.Errorf("pg_rewind of %s from %s failed (%v), and so did the rebuild from a fresh base backup: %w", n.Name, p.Name, err, rerr)
		}
		msg := fmt.Sprintf("pg_rewind of %s failed (%s); rebuilt from a fresh base backup of %s", n.Name, verdict(err.Error()), p.Name)
		if err := x.e.Store.Apply(ctx, &meta.RecordEvent{Event: meta.Event{Kind: meta.EventRebuild, Cluster: x.op.Cluster, Shard: x.op.Shard, Node: n.Name, Message: msg}}); err != nil {
			x.e.Log.Warn("record the rebuild event", "node", n.Name, "err", err)
		}
		return msg, nil
	}
	if strings.Contains(res.Output, "no rewind required") {
		return "no rewind required; configured as standby of " + p.Name, nil
	}
	return "rewound from " + p.Name, nil
}

// verdict is the line of a failed program's output that says why: the
// server's own PANIC or FATAL when there is one, else the program's last
// "error:", else its last line.
func verdict(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for _, mark := range []string{"PANIC:", "FATAL:", "error:"} {
		for i := len(lines) - 1; i >= 0; i-- {
			if j := strings.Index(lines[i], mark); j >= 0 {
				if mark == "error:" {
					j = 0 // keep the program's name
				}
				return strings.TrimSpace(lines[i][j:])
			}
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}
