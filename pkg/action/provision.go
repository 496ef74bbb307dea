package action

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// ProvisionSpec is the request of a provision-shard operation. The first
// node becomes the primary.
type ProvisionSpec struct {
	Nodes      []ProvisionNode   `json:"nodes"`
	Parameters map[string]string `json:"parameters,omitempty"`
	// Allow are the addresses, CIDRs or host names let in over TCP (with
	// scram-sha-256) beside the nodes' own hosts: the manager replicas'
	// hosts and the applications'.
	Allow []string `json:"allow,omitempty"`
}

// ProvisionNode is one node to create.
type ProvisionNode struct {
	Name     string   `json:"name"`
	Host     string   `json:"host"`
	Port     int      `json:"port"`
	Agent    string   `json:"agent"`
	DataDir  string   `json:"data_dir"`
	Priority int      `json:"priority,omitempty"`
	Tags     []string `json:"tags,omitempty"`
}

// provisionEpoch is the epoch of a shard being created (CreateShard starts
// shards at epoch 1).
const provisionEpoch = 1

func provisionSpec(op *meta.Operation) (ProvisionSpec, error) {
	var spec ProvisionSpec
	if err := json.Unmarshal(op.Spec, &spec); err != nil {
		return spec, fmt.Errorf("decode provisioning spec: %w", err)
	}
	if len(spec.Nodes) == 0 {
		return spec, fmt.Errorf("provisioning spec has no nodes")
	}
	return spec, nil
}

// provisionPlan creates the primary by initdb, each standby by
// pg_basebackup with its own slot, waits until every standby streams and
// registers the shard last. On failure the servers it started are stopped.
func provisionPlan(op *meta.Operation) ([]step, func(context.Context, *opContext), error) {
	spec, err := provisionSpec(op)
	if err != nil {
		return nil, nil, err
	}
	p := spec.Nodes[0]
	hosts := map[string]bool{}
	for _, n := range spec.Nodes {
		hosts[n.Host] = true
	}
	for _, h := range spec.Allow {
		hosts[h] = true
	}
	var allow []string
	for h := range hosts {
		allow = append(allow, h)
	}
	sort.Strings(allow)
	steps := []step{
		{"initdb " + p.Name, func(ctx context.Context, x *opContext) (string, error) {
			a := x.e.Agents(p.Agent)
			if st, err := a.Status(ctx, p.DataDir); x.resumed && err == nil && st.Control.SystemID != "" {
				return "data directory initialised before the manager leader changed", nil
			}
			_, err := a.Initdb(ctx, agent.Request{DataDir: p.DataDir, Epoch: provisionEpoch, Port: p.Port, Parameters: spec.Parameters,
				Superuser: x.cluster.Settings.PGUser, Password: x.cluster.Settings.PGPassword, AllowHosts: allow, Listen: p.Host, Archive: ArchiveName(x.op.Cluster, x.op.Shard)})
			if err != nil {
				return "", fmt.Errorf("node %s (%s): %w", p.Name, p.Agent, err)
			}
			return "initdb " + p.DataDir, nil
		}},
		{"start " + p.Name, startProvisioned(p)},
	}
	for _, n := range spec.Nodes[1:] {
		steps = append(steps,
			step{"slot " + n.Name, func(ctx context.Context, x *opContext) (string, error) {
				if err := ensureSlots(ctx, x.cluster, meta.Node{Name: p.Name, Host: p.Host, Port: p.Port}, []string{n.Name}); err != nil {
					return "", err
				}
				return "slot " + slotName(n.Name) + " on " + p.Name, nil
			}},
			step{"basebackup " + n.Name, func(ctx context.Context, x *opContext) (string, error) {
				a := x.e.Agents(n.Agent)
				if st, err := a.Status(ctx, n.DataDir); x.resumed && err == nil && st.Control.SystemID != "" && st.Standby {
					return "data directory copied before the manager leader changed", nil
				}
				src := ConnInfo(x.cluster, meta.Node{Name: p.Name, Host: p.Host, Port: p.Port}, n.Name)
				src = strings.Replace(src, " application_name="+n.Name, "", 1)
				_, err := a.Basebackup(ctx, agent.Request{DataDir: n.DataDir, Epoch: provisionEpoch, Port: n.Port, Source: src, Listen: n.Host,
					PrimarySlotName: slotName(n.Name), AppName: n.Name, Parameters: spec.Parameters, Archive: ArchiveName(x.op.Cluster, x.op.Shard)})
				if err != nil {
					return "", fmt.Errorf("node %s (%s): %w", n.Name, n.Agent, err)
				}
				return "pg_basebackup from " + p.Name, nil
			}},
			step{"start " + n.Name, startProvisioned(n)},
		)
	}
	steps = append(steps,
		step{"wait-streaming", func(ctx context.Context, x *opContext) (string, error) {
			var names []string
			for _, n := range spec.Nodes[1:] {
				names = append(names, n.Name)
			}
			if len(names) == 0 {
				return "no standby", nil
			}
			if err := waitStreaming(ctx, x.cluster, meta.Node{Name: p.Name, Host: p.Host, Port: p.Port}, names, time.Minute); err != nil {
				return "", err
			}
			return "streaming: " + strings.Join(names, ", "), nil
		}},
		step{"register-shard", func(ctx context.Context, x *opContext) (string, error) {
			if len(x.shard.Nodes) > 0 {
				return "already registered", nil
			}
			cmd := &meta.CreateShard{Cluster: x.op.Cluster, Name: x.op.Shard, Settings: meta.ShardSettings{ReplicationSlots: true}}
			for i, n := range spec.Nodes {
				role := meta.RoleStandby
				if i == 0 {
					role = meta.RolePrimary
				}
				cmd.Nodes = append(cmd.Nodes, &meta.Node{Name: n.Name, Host: n.Host, Port: n.Port, Role: role, Agent: n.Agent, DataDir: n.DataDir, Priority: n.Priority, Tags: n.Tags})
			}
			if err := x.e.Store.Apply(ctx, cmd); err != nil {
				return "", err
			}
			return fmt.Sprintf("shard registered with primary %s and %d standby(s)", p.Name, len(spec.Nodes)-1), nil
		}},
	)
	undo := func(ctx context.Context, x *opContext) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		for i := len(spec.Nodes) - 1; i >= 0; i-- {
			n := spec.Nodes[i]
			_, _ = x.e.Agents(n.Agent).Stop(ctx, n.DataDir, provisionEpoch, "fast")
		}
	}
	return steps, undo, nil
}

func slotName(node string) string { return strings.ReplaceAll(node, "-", "_") }

func startProvisioned(n ProvisionNode) func(context.Context, *opContext) (string, error) {
	return func(ctx context.Context, x *opContext) (string, error) {
		if _, err := x.e.Agents(n.Agent).Start(ctx, n.DataDir, provisionEpoch); err != nil {
			return "", fmt.Errorf("node %s (%s): %w", n.Name, n.Agent, err)
		}
		return "started " + n.Name, nil
	}
}

// waitStreaming waits until every named standby streams from primary.
func waitStreaming(ctx context.Context, c meta.Cluster, primary meta.Node, names []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := connect(ctx, c, primary)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND application_name = ANY($1)", names).Scan(&n); err != nil {
			return fmt.Errorf("read replication of %s: %w", primary.Name, err)
		}
		if n == len(names) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d standbys stream from %s: %w", n, len(names), primary.Name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ensureSlots creates on primary the physical slot of each named node that
// lacks one.
func ensureSlots(ctx context.Context, c meta.Cluster, primary meta.Node, nodes []string) error {
	var stmts []string
	for _, n := range nodes {
		slot := quoteLiteral(slotName(n))
		stmts = append(stmts, "SELECT pg_create_physical_replication_slot("+slot+") WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = "+slot+")")
	}
	if len(stmts) == 0 {
		return nil
	}
	return execOn(ctx, c, primary, stmts...)
}

// slotOf returns the slot name node streams through, "" when the shard
// uses no slots.
func slotOf(sh meta.Shard, node string) string {
	if !sh.Settings.ReplicationSlots {
		return ""
	}
	return slotName(node)
}

// ArchiveName names a shard's WAL archive on its agents.
func ArchiveName(cluster, shard string) string { return cluster + "." + shard }
