package ha

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/clustermgr/clustermgr/pkg/action"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/status"
)

// scheduleGrace is how late a scheduled switchover may still start (a
// leader elected after its time): past it, it is refused as missed, not
// run outside its maintenance window.
const scheduleGrace = 5 * time.Minute

// ScheduleSwitchover records a switchover of a shard to node to (the best
// standby then, when empty) at a time.
func (m *Manager) ScheduleSwitchover(ctx context.Context, cluster, shard, to string, at time.Time) (meta.Schedule, error) {
	if err := m.awaitLeading(ctx); err != nil {
		return meta.Schedule{}, err
	}
	sc := meta.Schedule{ID: "switchover-at-" + at.UTC().Format("20060102T150405Z") + "-" + m.cfg.Now().UTC().Format("150405.000000000"),
		Cluster: cluster, Shard: shard, To: to, At: at}
	if err := m.store.Apply(ctx, &meta.PutSchedule{Schedule: sc}); err != nil {
		return meta.Schedule{}, err
	}
	var out meta.Schedule
	err := m.store.View(ctx, meta.Stale, func(st *meta.State) error {
		if got, ok := st.Schedules[sc.ID]; ok {
			out = *got
		}
		return nil
	})
	return out, err
}

// scheduleTag marks the switchover operation a schedule started, so that
// a new leader finds it.
func scheduleTag(id string) string { return "scheduled switchover " + id }

// runSchedules starts the scheduled switchovers whose time has come, or
// refuses them (why goes to the schedule and an event): the shard not
// healthy then, an operation running, no fit target, or the time missed.
func (m *Manager) runSchedules(ctx context.Context) {
	now := m.cfg.Now()
	var due []meta.Schedule
	started := map[string]string{} // schedule id → the operation an earlier leader started
	_ = m.store.View(ctx, meta.Stale, func(st *meta.State) error {
		for _, sc := range st.Schedules {
			if sc.State == meta.ScheduleWaiting && !sc.At.After(now) {
				due = append(due, *sc)
			}
		}
		if len(due) == 0 {
			return nil
		}
		for _, op := range st.Operations {
			if op.Kind == action.KindSwitchover && strings.HasPrefix(op.Reason, "scheduled switchover ") {
				id, _, _ := strings.Cut(strings.TrimPrefix(op.Reason, "scheduled switchover "), " ")
				started[id] = op.ID
			}
		}
		return nil
	})
	sort.Slice(due, func(i, j int) bool { return due[i].At.Before(due[j].At) })
	for _, sc := range due {
		if ctx.Err() != nil {
			return
		}
		if op, ok := started[sc.ID]; ok {
			m.settle(ctx, sc, meta.ScheduleStarted, "", op)
			continue
		}
		if late := now.Sub(sc.At); late > scheduleGrace {
			m.settle(ctx, sc, meta.ScheduleRefused, fmt.Sprintf("missed: due at %s, no manager led until %v later", sc.At.Format(time.RFC3339), late.Round(time.Second)), "")
			continue
		}
		if s, ok := m.shardSnapshot(ctx, sc.Cluster, sc.Shard); ok && !m.probedSince(&s, m.lastChange(shardKey(sc.Cluster, sc.Shard))) {
			// Decided, as the rounds are, once every node of the shard
			// was probed in this term and since its last operation: a
			// later round (the grace is minutes, a round a second).
			continue
		}
		if why := m.unfitForSchedule(ctx, sc); why != "" {
			m.settle(ctx, sc, meta.ScheduleRefused, why, "")
			continue
		}
		op, err := m.scheduledSwitchover(ctx, sc)
		if err != nil {
			if m.leading() != nil || ctx.Err() != nil {
				return // the next leader decides
			}
			m.settle(ctx, sc, meta.ScheduleRefused, err.Error(), "")
			continue
		}
		m.settle(ctx, sc, meta.ScheduleStarted, "", op.ID)
	}
}

// scheduledSwitchover starts sc's switchover on the shard as it is, not
// waiting for probes as a request does: it runs in the leader's loop.
func (m *Manager) scheduledSwitchover(ctx context.Context, sc meta.Schedule) (meta.Operation, error) {
	s, err := m.idleShard(ctx, sc.Cluster, sc.Shard)
	if err != nil {
		return meta.Operation{}, err
	}
	return m.switchoverOn(ctx, s, sc.To, scheduleTag(sc.ID))
}

// unfitForSchedule says why the shard may not switch over now: it must
// be healthy (every node up and streaming) at the schedule's time.
func (m *Manager) unfitForSchedule(ctx context.Context, sc meta.Schedule) string {
	s, err := m.findShard(ctx, sc.Cluster, sc.Shard)
	if err != nil {
		return err.Error()
	}
	// A routine change gives way to the switchover, and a paused cluster
	// still switches over on request: the nodes alone decide.
	s.op = nil
	s.cluster.Settings.AutoFailover = true
	sh := api.Shard{Cluster: s.cluster.Name, Name: s.shard.Name}
	for _, n := range s.nodes {
		sh.Nodes = append(sh.Nodes, api.Node{Name: n.Name, Role: string(n.Role)})
	}
	m.decorateHealth(s, &sh)
	if sh.State == string(status.ShardHealthy) {
		return ""
	}
	var bad []string
	for _, n := range sh.Nodes {
		if n.Status != nil && n.Status.Health != string(status.Healthy) {
			bad = append(bad, n.Name+" "+n.Status.Health)
		}
	}
	why := "the shard is " + sh.State + " at the scheduled time"
	if len(bad) > 0 {
		why += " (" + strings.Join(bad, ", ") + ")"
	}
	return why
}

func (m *Manager) settle(ctx context.Context, sc meta.Schedule, state, reason, op string) {
	if err := m.store.Apply(ctx, &meta.SetSchedule{ID: sc.ID, State: state, Reason: reason, Operation: op}); err != nil && ctx.Err() == nil {
		m.log.Warn("record a scheduled switchover", "schedule", sc.ID, "state", state, "err", err)
	}
}

// CancelSchedule cancels a scheduled switchover that has not started.
func (m *Manager) CancelSchedule(ctx context.Context, id string) (meta.Schedule, error) {
	if err := m.awaitLeading(ctx); err != nil {
		return meta.Schedule{}, err
	}
	if err := m.store.Apply(ctx, &meta.SetSchedule{ID: id, State: meta.ScheduleCancelled, Reason: "cancelled by an operator"}); err != nil {
		return meta.Schedule{}, err
	}
	var out meta.Schedule
	err := m.store.View(ctx, meta.Stale, func(st *meta.State) error {
		if got, ok := st.Schedules[id]; ok {
			out = *got
		}
		return nil
	})
	return out, err
}
