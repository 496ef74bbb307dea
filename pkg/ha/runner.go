package ha

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/clustermgr/clustermgr/pkg/action"
	"github.com/clustermgr/clustermgr/pkg/decision"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// runningOp is an operation this leader term runs: at most one per shard.
type runningOp struct {
	id, kind string
	cancel   context.CancelFunc
	done     chan struct{} // closed when its routine has returned
}

// routineRetry is the backoff of a shard's failed routine changes.
type routineRetry struct {
	fails int
	next  time.Time
}

// startOp runs op in the current leader term, in a routine of its own
// that a preemption can stop.
func (m *Manager) startOp(op meta.Operation) {
	key := shardKey(op.Cluster, op.Shard)
	m.mu.Lock()
	ctx, wg := m.term, m.termWG
	if ctx == nil || m.running[key] != nil {
		m.mu.Unlock()
		return
	}
	octx, cancel := context.WithCancel(ctx)
	r := &runningOp{id: op.ID, kind: op.Kind, cancel: cancel, done: make(chan struct{})}
	m.running[key] = r
	wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer wg.Done()
		defer close(r.done)
		defer cancel()
		err := m.exec.Run(octx, op)
		m.mu.Lock()
		delete(m.running, key)
		m.opEnded[key] = m.cfg.Now()
		m.mu.Unlock()
		switch {
		case op.Kind == action.KindRejoin:
			m.rejoinEnded(ctx, op, err)
		case action.Preemptible(op.Kind) && octx.Err() == nil,
			op.Kind == action.KindFailover && octx.Err() == nil:
			// A failed automatic failover (one refused because the
			// old primary may keep a majority, say) is tried again
			// with the routine changes' backoff, not every round.
			m.routineEnded(key, op.Kind, err)
		}
		if err != nil && octx.Err() == nil {
			m.log.Warn("operation ended with an error", "op", op.ID, "err", err)
		}
	}()
}

// startRoutine starts a routine change of a healthy shard (a repoint or
// a sync-set change) under its primary, unless the same change failed
// lately (decision.RetryBackoff from one probe interval). It reports
// whether it started one.
func (m *Manager) startRoutine(ctx context.Context, s *shardSnap, kind string, spec any, reason string) bool {
	p := s.primary()
	if p == nil {
		return false
	}
	if m.retryLater(shardKey(s.cluster.Name, s.shard.Name), kind) {
		return false
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		m.log.Warn("encode routine change", "kind", kind, "err", err)
		return false
	}
	if _, err := m.startOperation(ctx, meta.Operation{Kind: kind, Cluster: s.cluster.Name, Shard: s.shard.Name, From: p.Name,
		Epoch: s.shard.Epoch, Reason: reason, Spec: raw}); err != nil {
		m.log.Warn("start "+kind, "shard", shardKey(s.cluster.Name, s.shard.Name), "err", err)
		return false
	}
	return true
}

// retryLater reports whether kind failed on the shard lately and is
// still backing off (routineEnded).
func (m *Manager) retryLater(key, kind string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg.Now().Before(m.routineRetry[key+"#"+kind].next)
}

// routineEnded resets or extends the backoff of a routine change.
func (m *Manager) routineEnded(key, kind string, err error) {
	rk := key + "#" + kind
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		delete(m.routineRetry, rk)
		return
	}
	r := m.routineRetry[rk]
	r.fails++
	r.next = m.cfg.Now().Add(decision.RetryBackoff(r.fails, m.cfg.ProbeInterval))
	m.routineRetry[rk] = r
}

// decideDuringRoutine decides for a shard while a routine change runs on
// it: only a failover is acted on, and it first preempts the change.
func (m *Manager) decideDuringRoutine(ctx context.Context, s *shardSnap, voters []string) {
	ds := decision.Decide(m.input(s, voters))
	if len(ds) == 0 || ds[0].Kind != decision.Failover || !s.cluster.Settings.AutoFailover {
		return
	}
	if err := m.preempt(ctx, s, ds[0].Reason); err != nil {
		m.log.Warn("preempt a routine change for a failover", "shard", shardKey(s.cluster.Name, s.shard.Name), "err", err)
		return
	}
	// Decide again on the shard as the preempted change left it (it may
	// have recorded a smaller synchronous set).
	fresh, err := m.findShard(ctx, s.cluster.Name, s.shard.Name)
	if err != nil {
		return
	}
	m.decideShard(ctx, fresh, voters)
}

// errNotPreemptible is a running operation that must finish first.
var errNotPreemptible = errors.New("the running operation cannot be preempted")

// preempt stops the routine change running on the shard (s.op), waits for
// its routine to return and records it cancelled, so that a failover or a
// requested operation starts at once. What the change leaves half done is
// safe (action.Preemptible) and decided again later.
func (m *Manager) preempt(ctx context.Context, s *shardSnap, why string) error {
	key := shardKey(s.cluster.Name, s.shard.Name)
	m.mu.Lock()
	r := m.running[key]
	m.mu.Unlock()
	if r != nil && !action.Preemptible(r.kind) {
		return errNotPreemptible
	}
	if s.op != nil && !action.Preemptible(s.op.Kind) {
		return errNotPreemptible
	}
	if r != nil {
		r.cancel()
		<-r.done
	}
	ids := []string{}
	if r != nil {
		ids = append(ids, r.id)
	}
	if s.op != nil && (r == nil || s.op.ID != r.id) {
		ids = append(ids, s.op.ID)
	}
	for _, id := range ids {
		err := m.store.Apply(ctx, &meta.FinishOperation{ID: id, State: meta.OpCancelled, Error: "preempted: " + why})
		if err != nil && meta.KindOf(err) != meta.KindConflict && meta.KindOf(err) != meta.KindNotFound {
			return err // a conflict: it had finished meanwhile
		}
		m.log.Info("routine change preempted", "op", id, "why", why)
	}
	s.op = nil
	return nil
}
