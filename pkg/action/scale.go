package action

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// Operation kinds of scaling.
const (
	KindAddNode    = "add-node"
	KindRemoveNode = "remove-node"
	KindReinit     = "reinit"
)

// AddNodeSpec is the request of an add-node operation.
type AddNodeSpec struct {
	Node       ProvisionNode     `json:"node"`
	Parameters map[string]string `json:"parameters,omitempty"`
}

// RemoveNodeSpec is the request of a remove-node operation.
type RemoveNodeSpec struct {
	Purge bool `json:"purge"`
}

// addNodePlan copies a new standby from the primary with its own slot,
// starts it, waits until it streams and registers it last.
func addNodePlan(op *meta.Operation) ([]step, func(context.Context, *opContext), error) {
	var spec AddNodeSpec
	if err := json.Unmarshal(op.Spec, &spec); err != nil {
		return nil, nil, fmt.Errorf("decode add-node spec: %w", err)
	}
	n := spec.Node
	primary := func(x *opContext) (meta.Node, error) {
		p := x.shard.Primary()
		if p == nil {
			return meta.Node{}, fmt.Errorf("shard %s/%s has no primary to copy from", x.op.Cluster, x.op.Shard)
		}
		return *p, nil
	}
	steps := []step{
		{"slot " + n.Name, func(ctx context.Context, x *opContext) (string, error) {
			p, err := primary(x)
			if err != nil {
				return "", err
			}
			if err := ensureSlots(ctx, x.cluster, p, []string{n.Name}); err != nil {
				return "", err
			}
			return "slot " + slotName(n.Name) + " on " + p.Name, nil
		}},
		{"basebackup " + n.Name, func(ctx context.Context, x *opContext) (string, error) {
			p, err := primary(x)
			if err != nil {
				return "", err
			}
			a := x.e.Agents(n.Agent)
			if st, err := a.Status(ctx, n.DataDir); x.resumed && err == nil && st.Control.SystemID != "" && st.Standby {
				return "data directory copied before the manager leader changed", nil
			}
			src := strings.Replace(ConnInfo(x.cluster, p, n.Name), " application_name="+n.Name, "", 1)
			if _, err := a.Basebackup(ctx, agent.Request{DataDir: n.DataDir, Epoch: x.shard.Epoch, Port: n.Port, Source: src, Listen: n.Host,
				PrimarySlotName: slotName(n.Name), AppName: n.Name, Parameters: spec.Parameters, Archive: ArchiveName(x.op.Cluster, x.op.Shard)}); err != nil {
				return "", fmt.Errorf("node %s (%s): %w", n.Name, n.Agent, err)
			}
			return "pg_basebackup from " + p.Name, nil
		}},
		{"start " + n.Name, func(ctx context.Context, x *opContext) (string, error) {
			if _, err := x.e.Agents(n.Agent).Start(ctx, n.DataDir, x.shard.Epoch); err != nil {
				return "", fmt.Errorf("node %s (%s): %w", n.Name, n.Agent, err)
			}
			return "started " + n.Name, nil
		}},
		{"wait-streaming", func(ctx context.Context, x *opContext) (string, error) {
			p, err := primary(x)
			if err != nil {
				return "", err
			}
			if err := waitStreaming(ctx, x.cluster, p, []string{n.Name}, time.Minute); err != nil {
				return "", err
			}
			return n.Name + " streams from " + p.Name, nil
		}},
		{"register-node", func(ctx context.Context, x *opContext) (string, error) {
			if _, ok := x.shard.Nodes[n.Name]; ok {
				return "already registered", nil
			}
			err := x.e.Store.Apply(ctx, &meta.AddNode{Cluster: x.op.Cluster, Shard: x.op.Shard, Node: &meta.Node{
				Name: n.Name, Host: n.Host, Port: n.Port, Role: meta.RoleStandby, Agent: n.Agent, DataDir: n.DataDir, Priority: n.Priority, Tags: n.Tags}})
			if err != nil {
				return "", err
			}
			return "registered " + n.Name, nil
		}},
	}
	undo := func(ctx context.Context, x *opContext) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_, _ = x.e.Agents(n.Agent).Stop(ctx, n.DataDir, max(x.shard.Epoch, 1), "fast")
	}
	return steps, undo, nil
}

// removeNodePlan stops a standby, drops its slot on the primary, removes
// its data directory when asked, and unregisters it.
func removeNodePlan(op *meta.Operation) ([]step, func(context.Context, *opContext), error) {
	var spec RemoveNodeSpec
	if len(op.Spec) > 0 {
		if err := json.Unmarshal(op.Spec, &spec); err != nil {
			return nil, nil, fmt.Errorf("decode remove-node spec: %w", err)
		}
	}
	name := op.Target
	steps := []step{
		{"stop " + name, func(ctx context.Context, x *opContext) (string, error) {
			n, err := x.node(name)
			if err != nil {
				return "already unregistered", nil
			}
			if n.Role == meta.RolePrimary {
				return "", fmt.Errorf("%s is the primary; switch over first", name)
			}
			if _, err := x.e.Agents(n.Agent).Stop(ctx, n.DataDir, x.shard.Epoch, "fast"); err != nil {
				return "", err
			}
			return "stopped " + name, nil
		}},
		{"drop-slot", func(ctx context.Context, x *opContext) (string, error) {
			p := x.shard.Primary()
			if p == nil {
				return "no primary", nil
			}
			slot := quoteLiteral(slotName(name))
			if err := execOn(ctx, x.cluster, *p, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = "+slot+" AND NOT active"); err != nil {
				return "", err
			}
			return "dropped slot " + slotName(name) + " on " + p.Name, nil
		}},
	}
	if spec.Purge {
		steps = append(steps, step{"purge " + name, func(ctx context.Context, x *opContext) (string, error) {
			n, err := x.node(name)
			if err != nil {
				return "already unregistered", nil
			}
			if err := x.e.Agents(n.Agent).Purge(ctx, n.DataDir, x.shard.Epoch); err != nil {
				return "", err
			}
			return "removed " + n.DataDir, nil
		}})
	}
	steps = append(steps, step{"unregister", func(ctx context.Context, x *opContext) (string, error) {
		if _, err := x.node(name); err != nil {
			return "already unregistered", nil
		}
		if err := x.e.Store.Apply(ctx, &meta.RemoveNode{Cluster: x.op.Cluster, Shard: x.op.Shard, Node: name}); err != nil {
			return "", err
		}
		return "unregistered " + name, nil
	}})
	return steps, nil, nil
}

// reinitPlan rebuilds a broken standby: stop it, remove its data
// directory, then copy it again from the primary as a new standby would be
// (its registration is kept).
func reinitPlan(op *meta.Operation) ([]step, func(context.Context, *opContext), error) {
	var spec AddNodeSpec
	if err := json.Unmarshal(op.Spec, &spec); err != nil {
		return nil, nil, fmt.Errorf("decode reinit spec: %w", err)
	}
	n := spec.Node
	steps := []step{
		{"stop " + n.Name, func(ctx context.Context, x *opContext) (string, error) {
			if _, err := x.e.Agents(n.Agent).Stop(ctx, n.DataDir, x.shard.Epoch, "kill"); err != nil {
				return "", err
			}
			return "stopped " + n.Name, nil
		}},
		{"purge " + n.Name, func(ctx context.Context, x *opContext) (string, error) {
			if err := x.e.Agents(n.Agent).Purge(ctx, n.DataDir, x.shard.Epoch); err != nil {
				return "", err
			}
			return "removed " + n.DataDir, nil
		}},
	}
	rest, undo, err := addNodePlan(op)
	if err != nil {
		return nil, nil, err
	}
	return append(steps, rest...), undo, nil
}
