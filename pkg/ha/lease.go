package ha

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/clustermgr/clustermgr/pkg/action"
	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/fencing"
	"github.com/clustermgr/clustermgr/pkg/status"
)

// renewLeases renews the lease of every declared primary that no
// majority of the manager replicas sees down, every third of the lease,
// until ctx ends. A primary a majority cannot see, or that a failover or
// switchover is replacing, gets no renewal: once its lease runs out and no standby streams from it, its
// agent fences it (agent.RunLeases).
//
// Each primary's renewal goes out in one of leaseSlots parts of the
// interval, by a hash of its shard (the same part each time, so that
// its renewals stay a third of the lease apart), and leaseWorkers send
// them: the leader sends a steady stream, not every renewal of the fleet
// at once, which held up the API's answers for tens of milliseconds
// every interval. A renewal no idle worker takes gets a goroutine of its
// own, so that agents slow to answer (each may hold a worker for a third
// of the lease) never hold back the renewals of the others.
func (m *Manager) renewLeases(ctx context.Context) {
	queue := make(chan leaseJob)
	var wg sync.WaitGroup
	defer wg.Wait()
	for range leaseWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-queue:
					m.sendRenewal(ctx, j)
				}
			}
		}()
	}
	pace := newSlotPacer(time.Now(), m.cfg.LeaseTTL/3, leaseSlots)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		for _, slot := range pace.due(time.Now()) {
			for _, j := range m.renewals(ctx, slot) {
				select {
				case queue <- j:
				default:
					wg.Add(1)
					go func() {
						defer wg.Done()
						m.sendRenewal(ctx, j)
					}()
				}
			}
		}
		timer.Reset(pace.wait(time.Now()))
	}
}

const (
	// leaseSlots is how many parts each renewal interval is cut into.
	leaseSlots = 10
	// leaseWorkers send the renewals; a renewal waits a third of the
	// lease (a second at most) for its answer.
	leaseWorkers = 64
)

type leaseJob struct {
	url, dataDir, conninfo, node string
	epoch                        uint64
	standbys                     []string
}

// leaseBook returns this term's book of granted leases.
func (m *Manager) leaseBook() *leaseBook {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leases
}

// FencedBy returns when the primary in dataDir, whose agent at agentURL
// did not answer a fence, has fenced itself at the latest unless enough
// of standbys take its WAL (see leaseBook): the end of the last lease
// this leader may have granted it, or of one an earlier leader granted
// before this one led, plus fenceSlack; and the standbys its last
// renewal named (nil when this leader sent none).
func (m *Manager) FencedBy(agentURL, dataDir string) (time.Time, []string) {
	if b := m.leaseBook(); b != nil {
		return b.fencedBy(agentURL, dataDir)
	}
	return m.cfg.Now().Add(m.cfg.LeaseTTL + fenceSlack), nil
}

// fenceLease is FencedBy for a failover that will wait until the time it
// returns: no round renews that primary's lease before then.
func (m *Manager) fenceLease(agentURL, dataDir string) (time.Time, []string) {
	if b := m.leaseBook(); b != nil {
		return b.fence(agentURL, dataDir)
	}
	return m.cfg.Now().Add(m.cfg.LeaseTTL + fenceSlack), nil
}

// renewals returns the renewals due in slot.
func (m *Manager) renewals(ctx context.Context, slot int) []leaseJob {
	voters := m.voters()
	var jobs []leaseJob
	for _, s := range m.sharedSlot(ctx, slot) {
		p := s.primary()
		if p == nil || p.Agent == "" || p.DataDir == "" {
			continue
		}
		if s.op != nil && action.ReplacesPrimary(s.op) {
			continue
		}
		// Renewed unless a majority of the manager replicas sees the
		// primary down: only then can a failover start, so only then
		// must the primary fence itself when it has no standby either.
		if h, smp := m.view(s, p.Name); h == status.Unknown || smp == nil || smp.InRecovery {
			continue
		}
		if m.votes(nodeKey(s.cluster.Name, s.shard.Name, p.Name), voters)*2 > len(voters) {
			continue
		}
		if j, ok := m.leaseJobOf(s); ok {
			jobs = append(jobs, j)
		}
	}
	return jobs
}

// sendRenewal sends one round's renewal.
func (m *Manager) sendRenewal(ctx context.Context, j leaseJob) {
	book := m.leaseBook()
	if book == nil {
		return
	}
	if err := m.renew(ctx, book, j, false); err != nil && ctx.Err() == nil {
		m.log.Debug("renew primary lease", "data_dir", j.dataDir, "agent", j.url, "err", err)
	}
}

// leaseJobOf returns the renewal of the shard's primary's lease.
func (m *Manager) leaseJobOf(s *shardSnap) (leaseJob, bool) {
	p := s.primary()
	if p == nil || p.Agent == "" || p.DataDir == "" {
		return leaseJob{}, false
	}
	var standbys []string
	for _, n := range s.nodes { // sorted; a snapshot's shard has no Nodes map
		if n.Name != p.Name {
			standbys = append(standbys, n.Name)
		}
	}
	c := s.cluster
	pw, err := m.openPassword(&c)
	if err != nil {
		m.secretErr.log(m.log, c.Name, "open the password of cluster "+c.Name+"; its primaries' leases are not renewed", err)
		return leaseJob{}, false
	}
	c.Settings.PGPassword = pw
	return leaseJob{url: p.Agent, dataDir: p.DataDir, conninfo: action.NodeConnInfo(c, *p), epoch: s.shard.Epoch, standbys: standbys,
		node: agent.NodeKey(c.Name, s.shard.Name, p.Name)}, true
}

// errLeaseClosed is a round's renewal of a primary a failover waits to
// see fenced.
var errLeaseClosed = errors.New("a failover waits for this primary's lease to run out")

// renew sends one renewal and records it in the book; promoted is an
// operation's renewal of the primary it made, which a failover's wait
// for that node's earlier lease does not hold back.
func (m *Manager) renew(ctx context.Context, book *leaseBook, j leaseJob, promoted bool) error {
	rctx, cancel := context.WithTimeout(ctx, min(m.cfg.LeaseTTL/3, time.Second))
	defer cancel()
	key := leaseBookKey(j.url, j.dataDir)
	sent := m.cfg.Now()
	from, ok := book.from(key, sent, j.standbys, promoted)
	if !ok {
		return errLeaseClosed
	}
	err := m.exec.Agents(j.url).LeaseFrom(rctx, agent.LeaseRequest{DataDir: j.dataDir, Epoch: j.epoch, Conninfo: j.conninfo,
		From: from, TTL: m.cfg.LeaseTTL, AckWithin: ackWithin, Standbys: j.standbys, AcksNeeded: fencing.ServingAcks(1 + len(j.standbys)), Node: j.node})
	book.answered(key, sent, err)
	return err
}

// RenewLease renews the lease of a shard's primary now, as a round
// would: an operation restarting the primary in place renews it before
// and after, so that the lease does not run out while its standbys
// reconnect.
func (m *Manager) RenewLease(ctx context.Context, cluster, shard string) error {
	book := m.leaseBook()
	if book == nil {
		return errors.New("this replica does not lead")
	}
	s, err := m.findShard(ctx, cluster, shard)
	if err != nil {
		return err
	}
	j, ok := m.leaseJobOf(s)
	if !ok {
		return nil
	}
	return m.renew(ctx, book, j, true)
}
