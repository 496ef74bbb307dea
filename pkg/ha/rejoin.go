package ha

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/clustermgr/clustermgr/pkg/action"
	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/decision"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// startRejoin records a rejoin of node and runs it.
func (m *Manager) startRejoin(ctx context.Context, s *shardSnap, node string, diverged bool, reason string) (meta.Operation, error) {
	spec, err := json.Marshal(action.RejoinSpec{Diverged: diverged})
	if err != nil {
		return meta.Operation{}, err
	}
	return m.startOperation(ctx, meta.Operation{Kind: action.KindRejoin, Cluster: s.cluster.Name, Shard: s.shard.Name, Target: node,
		Epoch: s.shard.Epoch, Reason: reason, Spec: spec})
}

// lastFailedRejoin is when the last rejoin of node recorded in the state
// failed (zero when the last one did not fail, or there is none): a new
// leader keeps the backoff its predecessor started.
func (m *Manager) lastFailedRejoin(ctx context.Context, cluster, shard, node string) time.Time {
	var last *meta.Operation
	_ = m.store.View(ctx, meta.Stale, func(st *meta.State) error {
		for _, op := range st.Operations {
			if op.Kind == action.KindRejoin && op.Cluster == cluster && op.Shard == shard && op.Target == node && op.Finished() &&
				(last == nil || op.UpdatedAt.After(last.UpdatedAt)) {
				o := *op
				last = &o
			}
		}
		return nil
	})
	if last == nil || last.State != meta.OpFailed {
		return time.Time{}
	}
	return last.UpdatedAt
}

// rejoinEnded sets when the next automatic rejoin of op's node may start:
// after a success, at once when needed again; after a failure, with a
// growing backoff (decision.RetryBackoff); and when the node's agent could
// not be reached, as soon as a watcher finds it answering again.
func (m *Manager) rejoinEnded(ctx context.Context, op meta.Operation, err error) {
	nk := nodeKey(op.Cluster, op.Shard, op.Target)
	var unreachable *agent.UnreachableError
	m.ops.mu.Lock()
	switch {
	case err == nil:
		delete(m.ops.rejoinFails, nk)
		delete(m.ops.rejoinAt, nk)
		m.ops.mu.Unlock()
		return
	case !errors.As(err, &unreachable):
		m.ops.rejoinFails[nk]++
		m.ops.rejoinAt[nk] = m.cfg.Now().Add(decision.RetryBackoff(m.ops.rejoinFails[nk], m.cfg.RejoinBackoff))
		m.ops.mu.Unlock()
		return
	}
	// Wait for the agent rather than for a clock.
	m.ops.rejoinAt[nk] = m.cfg.Now().Add(24 * time.Hour)
	watched := m.ops.watching[nk]
	m.ops.watching[nk] = true
	m.ops.mu.Unlock()
	if watched {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	wg := m.termWG
	if wg == nil {
		m.ops.mu.Lock()
		delete(m.ops.watching, nk)
		m.ops.mu.Unlock()
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.watchAgent(ctx, nk, unreachable.URL, op)
	}()
}

// watchAgent polls an unreachable agent until it answers (or the term
// ends), then lets the next round rejoin the node at once.
func (m *Manager) watchAgent(ctx context.Context, nk, url string, op meta.Operation) {
	defer func() {
		m.ops.mu.Lock()
		delete(m.ops.watching, nk)
		m.ops.mu.Unlock()
	}()
	// The agent is asked by its registered name, as every step asks it
	// (url, from the error, is only what the name resolved to then).
	dataDir, name := "", ""
	if s, err := m.findShard(ctx, op.Cluster, op.Shard); err == nil {
		if n := s.node(op.Target); n != nil {
			dataDir, name = n.DataDir, n.Agent
		}
	}
	if name == "" {
		// The node is gone or has no agent: the next round decides.
		m.ops.mu.Lock()
		m.ops.rejoinAt[nk] = time.Time{}
		m.ops.mu.Unlock()
		return
	}
	interval := max(m.cfg.ProbeInterval, 200*time.Millisecond)
	for {
		actx, cancel := context.WithTimeout(ctx, max(m.cfg.ProbeTimeout, time.Second))
		_, err := m.exec.Agents(name).Status(actx, dataDir)
		cancel()
		var unreachable *agent.UnreachableError
		if ctx.Err() != nil {
			return
		}
		if !errors.As(err, &unreachable) {
			m.log.Info("agent answers again; rejoin may start", "node", nk, "agent", url)
			m.ops.mu.Lock()
			// Due now, and known: a round that found no entry would
			// take up the failed rejoin's backoff from Raft again
			// (lastFailedRejoin), as a new leader does.
			m.ops.rejoinAt[nk] = time.Time{}
			m.ops.mu.Unlock()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
