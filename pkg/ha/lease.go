package ha

import (
	"context"
	"sync"
	"time"

	"github.com/clustermgr/clustermgr/pkg/action"
	"github.com/clustermgr/clustermgr/pkg/status"
)

// replyWithin is how recently a standby must have replied to a primary
// whose lease ran out for the primary to keep serving: a few of the
// standbys' status intervals (1 s on provisioned nodes).
const replyWithin = 3 * time.Second

// renewLeases renews the lease of every declared primary that no
// majority of the manager replicas sees down, every third of the lease,
// until ctx ends. A primary a majority cannot see, or that a failover or
// switchover is replacing, gets no renewal: once its lease runs out and no standby streams from it, its
// agent fences it (agent.RunLeases).
func (m *Manager) renewLeases(ctx context.Context) {
	t := time.NewTicker(m.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		m.renewRound(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type leaseJob struct {
	url, dataDir, conninfo string
	epoch                  uint64
}

func (m *Manager) renewRound(ctx context.Context) {
	voters := m.voters()
	var jobs []leaseJob
	for _, s := range m.snapshot(ctx) {
		p := s.primary()
		if p == nil || p.Agent == "" || p.DataDir == "" {
			continue
		}
		if s.op != nil && (s.op.Kind == action.KindFailover || s.op.Kind == action.KindManualFailover || s.op.Kind == action.KindSwitchover) {
			continue
		}
		// Renewed unless a majority of the manager replicas sees the
		// primary down: only then can a failover start, so only then
		// must the primary fence itself when it has no standby either.
		if h, smp := m.view(&s, p.Name); h == status.Unknown || smp == nil || smp.InRecovery {
			continue
		}
		if m.votes(nodeKey(s.cluster.Name, s.shard.Name, p.Name), voters)*2 > len(voters) {
			continue
		}
		jobs = append(jobs, leaseJob{url: p.Agent, dataDir: p.DataDir, conninfo: action.NodeConnInfo(s.cluster, *p), epoch: s.shard.Epoch})
	}
	timeout := min(m.cfg.LeaseTTL/3, time.Second)
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			if err := m.exec.Agents(j.url).Lease(rctx, j.dataDir, j.epoch, j.conninfo, m.cfg.LeaseTTL, replyWithin); err != nil && ctx.Err() == nil {
				m.log.Debug("renew primary lease", "data_dir", j.dataDir, "agent", j.url, "err", err)
			}
		}()
	}
	wg.Wait()
}
