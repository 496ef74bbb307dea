package ha

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/clustermgr/clustermgr/pkg/action"
	"github.com/clustermgr/clustermgr/pkg/decision"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/status"
)

// Restart starts a restart of a shard's nodes as decision.PlanRestart
// orders them: a rolling restart takes the standbys one at a time and
// ends with a switchover; with OnlyPending, only the nodes that need a
// restart for a parameter (pg_settings.pending_restart, as the leader
// last saw it); or one node.
func (m *Manager) Restart(ctx context.Context, cluster, shard string, req decision.RestartRequest) (meta.Operation, error) {
	s, release, err := m.probedShard(ctx, cluster, shard)
	if err != nil {
		return meta.Operation{}, err
	}
	defer release()
	p := s.primary()
	if p == nil {
		return meta.Operation{}, conflictf("shard %s/%s has no primary", cluster, shard)
	}
	if h, _ := m.view(s, p.Name); h != status.Healthy {
		return meta.Operation{}, conflictf("primary %s is not healthy (%s); a restart waits for a healthy shard", p.Name, h)
	}
	pending := map[string][]string{}
	for _, n := range s.nodes {
		if _, smp := m.view(s, n.Name); smp != nil {
			pending[n.Name] = smp.PendingRestart
		}
	}
	decreased, err := m.decreased(ctx, s)
	if err != nil {
		return meta.Operation{}, err
	}
	plan, refused := decision.PlanRestart(m.input(s, m.voters()), req, pending, decreased)
	if refused != "" {
		return meta.Operation{}, conflictf("%s", refused)
	}
	for _, name := range append(slices.Clone(plan.Standbys), p.Name) {
		if name == p.Name && !plan.PrimaryFirst && !plan.Switchover {
			continue
		}
		if n := s.node(name); n.Agent == "" || n.DataDir == "" {
			return meta.Operation{}, conflictf("%s has no agent and data_dir registered: it cannot be restarted", name)
		}
	}
	op := meta.Operation{Kind: action.KindRestart, Cluster: cluster, Shard: shard, From: p.Name, Epoch: s.shard.Epoch, Reason: "restart requested: " + plan.Reason}
	if plan.Switchover {
		target, err := m.switchoverTarget(s, "")
		if err != nil {
			return meta.Operation{}, err
		}
		op.Target, op.Epoch = target, s.shard.Epoch+1
		op.Reason += fmt.Sprintf(" (to %s)", target)
	}
	if op.Spec, err = json.Marshal(action.RestartSpec{Plan: plan}); err != nil {
		return meta.Operation{}, err
	}
	return m.startOperation(ctx, op)
}

// decreased reads, on the primary, the current values of the parameters
// standbys must hold at least as high, when the shard sets any, and
// names those the shard's parameters lower.
func (m *Manager) decreased(ctx context.Context, s *shardSnap) ([]string, error) {
	want := map[string]string{}
	for _, k := range decision.StandbyAtLeast() {
		if v, ok := s.shard.Settings.Parameters[k]; ok {
			want[k] = v
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	c := s.cluster
	pw, err := m.openPassword(&c)
	if err != nil {
		return nil, err
	}
	c.Settings.PGPassword = pw
	p := s.primary()
	conn, err := action.Connect(ctx, c, *p)
	if err != nil {
		return nil, fmt.Errorf("%w: read the primary's settings: %v", ErrUnavailable, err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT name, setting FROM pg_settings WHERE name = ANY($1)", decision.StandbyAtLeast())
	if err != nil {
		return nil, fmt.Errorf("%w: read the primary's settings: %v", ErrUnavailable, err)
	}
	current := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		current[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return decision.Decreased(want, current), nil
}
