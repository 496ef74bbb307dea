package ha

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clustermgr/clustermgr/pkg/action"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/decision"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/status"
)

func conflictf(format string, args ...any) error {
	return &meta.Error{Kind: meta.KindConflict, Msg: fmt.Sprintf(format, args...)}
}

func notFoundf(format string, args ...any) error {
	return &meta.Error{Kind: meta.KindNotFound, Msg: fmt.Sprintf(format, args...)}
}

// findShard returns a snapshot of one shard.
func (m *Manager) findShard(ctx context.Context, cluster, shard string) (*shardSnap, error) {
	if s, ok := m.shardSnapshot(ctx, cluster, shard); ok {
		return &s, nil
	}
	return nil, notFoundf("shard %s/%s does not exist", cluster, shard)
}

// idleShard returns the shard a manual operation is to run on: this
// replica must lead, the shard exist and no operation run on it.
func (m *Manager) idleShard(ctx context.Context, cluster, shard string) (*shardSnap, error) {
	if err := m.awaitLeading(ctx); err != nil {
		return nil, err
	}
	s, err := m.findShard(ctx, cluster, shard)
	if err != nil {
		return nil, err
	}
	// A routine change gives way; the request is checked against the
	// shard as the preempted change left it (a round may have started
	// another meanwhile: a few tries).
	for try := 0; try < 3 && s.op != nil && action.Preemptible(s.op.Kind); try++ {
		if err := m.preempt(ctx, s, "an operation was requested"); err != nil && !errors.Is(err, errNotPreemptible) {
			return nil, err
		}
		if s, err = m.findShard(ctx, cluster, shard); err != nil {
			return nil, err
		}
	}
	if s.op != nil {
		return nil, conflictf("operation %s (%s) is running on shard %s/%s", s.op.ID, s.op.Kind, cluster, shard)
	}
	return s, nil
}

// probedShard is idleShard for a switchover, a manual failover or a
// restart (they choose a node on the samples): it
// also waits, a few probe intervals at most, until every node of the
// shard has been probed since this term began and since the shard's
// last operation ended, as the leader's own rounds do. Decided on
// samples from while the last operation ran, a switchover asked for the
// moment it ended refused the old primary (a standby now) as down or not
// in recovery. The shard is read again after each wait: a routine change
// may have started meanwhile (it gives way as in idleShard, and its end
// is waited for in turn, within the same bound). No routine change
// starts on the shard until release is called (after the operation is
// started, or refused).
func (m *Manager) probedShard(ctx context.Context, cluster, shard string) (_ *shardSnap, release func(), err error) {
	key := shardKey(cluster, shard)
	unhold := m.ops.hold(key)
	defer func() {
		if err != nil {
			unhold()
		}
	}()
	deadline := time.Now().Add(min(3*m.cfg.ProbeInterval+m.cfg.ProbeTimeout, maxProbeWait))
	for {
		// Read (and preempt) again after each wait: a routine change
		// preempted here ends now, and its samples are waited for too.
		s, err := m.idleShard(ctx, cluster, shard)
		if err != nil {
			return nil, nil, err
		}
		waited := false
		for !m.probedSince(s, m.lastChange(key)) && time.Now().Before(deadline) {
			waited = true
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		if !waited {
			return s, unhold, nil
		}
		if !time.Now().Before(deadline) {
			s, err := m.idleShard(ctx, cluster, shard)
			if err != nil {
				return nil, nil, err
			}
			return s, unhold, nil
		}
	}
}

// maxProbeWait bounds probedShard's wait whatever the probe interval, so
// that a request forwarded to the leader is answered within the
// forwarding timeout.
const maxProbeWait = 5 * time.Second

// lastChange is when this term began or the shard's last operation in
// it ended, whichever is later: samples from before it may no longer
// hold. While the runner still holds an operation it is now: one whose
// end Raft has recorded is seen ended by clients before its routine
// returns and notes when (a switchover asked for in between was judged
// on probes from while the last one ran), and one preempted ends now.
func (m *Manager) lastChange(key string) time.Time {
	m.mu.Lock()
	t := m.termStart
	m.mu.Unlock()
	running, ended := m.ops.current(key)
	if running != nil {
		return m.cfg.Now()
	}
	if ended.After(t) {
		t = ended
	}
	return t
}

// idleAgentStandby returns an idle shard and one of its standbys that has
// an agent and a data directory (rejoin and reinit act through them).
func (m *Manager) idleAgentStandby(ctx context.Context, cluster, shard, node string) (*shardSnap, *meta.Node, error) {
	s, err := m.idleShard(ctx, cluster, shard)
	if err != nil {
		return nil, nil, err
	}
	n := s.node(node)
	if n == nil {
		return nil, nil, notFoundf("node %q does not exist in shard %s/%s", node, cluster, shard)
	}
	if n.Role != meta.RoleStandby {
		return nil, nil, conflictf("%s is the primary; switch over first", node)
	}
	if n.Agent == "" || n.DataDir == "" {
		return nil, nil, conflictf("%s has no agent and data_dir registered", node)
	}
	return s, n, nil
}

// leading returns an error unless this replica runs a leader term.
func (m *Manager) leading() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.term == nil || m.term.Err() != nil {
		id, api := m.store.Leader()
		return &meta.NotLeaderError{LeaderID: id, LeaderAPIAddr: api}
	}
	return nil
}

func (m *Manager) view(s *shardSnap, name string) (status.Health, *collector.Sample) {
	v, _ := m.obs.view(nodeKey(s.cluster.Name, s.shard.Name, name))
	return v.health, v.sample
}

// switchoverTarget checks that name can take over from a healthy primary
// now, or picks the best standby when name is empty
// (decision.SwitchoverTarget).
func (m *Manager) switchoverTarget(s *shardSnap, name string) (string, error) {
	if name != "" && s.node(name) == nil {
		return "", notFoundf("node %q does not exist in shard %s/%s", name, s.cluster.Name, s.shard.Name)
	}
	if name != "" && s.node(name).Role != meta.RoleStandby {
		return "", conflictf("%s is already the primary", name)
	}
	c := decision.SwitchoverTarget(m.input(s, m.voters()), name)
	if c.Node == "" {
		return "", conflictf("%s", c.Reason)
	}
	return c.Node, nil
}

// Switchover starts a planned switchover to node to (the best standby when
// empty). It refuses with a conflict when the primary or the target is not
// fit for it.
func (m *Manager) Switchover(ctx context.Context, cluster, shard, to string) (meta.Operation, error) {
	s, release, err := m.probedShard(ctx, cluster, shard)
	if err != nil {
		return meta.Operation{}, err
	}
	defer release()
	return m.switchoverOn(ctx, s, to, "switchover requested")
}

// switchoverOn starts a switchover of the idle shard s whose reason
// begins with why.
func (m *Manager) switchoverOn(ctx context.Context, s *shardSnap, to, why string) (meta.Operation, error) {
	p := s.primary()
	if p == nil {
		return meta.Operation{}, conflictf("shard %s/%s has no primary; use failover", s.cluster.Name, s.shard.Name)
	}
	if h, _ := m.view(s, p.Name); h != status.Healthy {
		return meta.Operation{}, conflictf("primary %s is not healthy (%s); use failover", p.Name, h)
	}
	if p.Agent == "" || p.DataDir == "" {
		return meta.Operation{}, conflictf("primary %s has no agent and data_dir registered; a switchover must stop it cleanly", p.Name)
	}
	target, err := m.switchoverTarget(s, to)
	if err != nil {
		return meta.Operation{}, err
	}
	reason := fmt.Sprintf("%s from %s to %s", why, p.Name, target)
	return m.startNew(ctx, action.KindSwitchover, s, target, p.Name, s.shard.Epoch+1, reason)
}

// UnsafeFailoverError refuses a manual failover that may lose
// acknowledged commits.
type UnsafeFailoverError struct {
	Msg       string
	LossBytes int64
}

func (e *UnsafeFailoverError) Error() string { return e.Msg }

// Failover starts a manual failover to node to: for when automatic
// failover refuses (or is paused). The target must be a healthy standby
// that holds every acknowledged commit as far as the manager knows
// (decision.CheckManualFailover), unless force is set.
func (m *Manager) Failover(ctx context.Context, cluster, shard, to string, force, oldPrimaryGone bool) (meta.Operation, error) {
	if to == "" {
		return meta.Operation{}, &meta.Error{Kind: meta.KindInvalid, Field: "to", Msg: "is required for a manual failover"}
	}
	s, release, err := m.probedShard(ctx, cluster, shard)
	if err != nil {
		return meta.Operation{}, err
	}
	defer release()
	n := s.node(to)
	if n == nil {
		return meta.Operation{}, notFoundf("node %q does not exist in shard %s/%s", to, cluster, shard)
	}
	if n.Role != meta.RoleStandby {
		return meta.Operation{}, conflictf("%s is already the primary", to)
	}
	check := decision.CheckManualFailover(m.input(s, m.voters()), to, force)
	switch {
	case !check.Allowed && check.Unsafe != "":
		return meta.Operation{}, &UnsafeFailoverError{Msg: check.Reason, LossBytes: check.LossBytes}
	case !check.Allowed:
		return meta.Operation{}, conflictf("%s", check.Reason)
	}
	op := meta.Operation{Kind: action.KindManualFailover, Cluster: s.cluster.Name, Shard: s.shard.Name, Target: to, Epoch: s.shard.Epoch + 1, Reason: check.Reason}
	if p := s.primary(); p != nil {
		op.From = p.Name
	}
	spec, err := m.failoverSpec(s, to, oldPrimaryGone)
	if err != nil {
		return meta.Operation{}, err
	}
	op.Spec = spec
	return m.startOperation(ctx, op)
}

// Rejoin starts a rejoin of a standby (fence, rewind, start).
func (m *Manager) Rejoin(ctx context.Context, cluster, shard, node string) (meta.Operation, error) {
	s, _, err := m.idleAgentStandby(ctx, cluster, shard, node)
	if err != nil {
		return meta.Operation{}, err
	}
	if s.primary() == nil {
		return meta.Operation{}, conflictf("shard %s/%s has no primary to rejoin", cluster, shard)
	}
	return m.startRejoin(ctx, s, node, true, "rejoin (rewind) of "+node+" requested")
}

// Primary returns the shard's primary when it is declared and healthy.
func (m *Manager) Primary(ctx context.Context, cluster, shard string) (api.Primary, error) {
	s, err := m.findShard(ctx, cluster, shard)
	if err != nil {
		return api.Primary{}, err
	}
	p := s.primary()
	if p == nil {
		return api.Primary{}, fmt.Errorf("%w: shard %s/%s has no declared primary", ErrNoPrimary, cluster, shard)
	}
	h, smp := m.view(s, p.Name)
	if h != status.Healthy || smp == nil || smp.InRecovery {
		return api.Primary{}, fmt.Errorf("%w: primary %s is %s", ErrNoPrimary, p.Name, h)
	}
	return api.Primary{Node: p.Name, Host: p.Host, Port: p.Port}, nil
}
