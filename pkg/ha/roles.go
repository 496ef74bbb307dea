package ha

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/clustermgr/clustermgr/pkg/action"
	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// The leader declares to each standby's agent what the standby is
// (synchronous or not, in maintenance or not, at which epoch), for the
// health checks load balancers poll (agent.HealthHandler). A primary is
// declared by its promotion and its lease renewals (lease.go). A
// declaration is sent when it changes, and again every roleRefresh so
// that an agent that restarted learns it.

// roleRefresh is how often an unchanged declaration is sent again.
const roleRefresh = 10 * time.Second

// roleBook is what this leader last told each node's agent.
type roleBook struct {
	mu   sync.Mutex
	told map[string]toldRole // by nodeKey
}

type toldRole struct {
	note string // what was declared (without the connection string)
	at   time.Time
}

func newRoleBook() *roleBook { return &roleBook{told: map[string]toldRole{}} }

// due reports whether note needs sending to key's agent at now.
func (b *roleBook) due(key, note string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.told[key]
	return !ok || t.note != note || now.Sub(t.at) >= roleRefresh
}

// sent records a declaration sent at at. A node's first one is recorded
// as sent up to roleRefresh earlier, by a hash of its key: a new leader
// declares every standby at once, and their refreshes are then spread
// over roleRefresh rather than all due in the same round.
func (b *roleBook) sent(key, note string, at time.Time, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		delete(b.told, key)
		return
	}
	if _, ok := b.told[key]; !ok {
		at = at.Add(-time.Duration(keyHash(key) % uint64(roleRefresh)))
	}
	b.told[key] = toldRole{note: note, at: at}
}

// declareRoles sends the standbys' declarations every third of the lease
// until ctx ends.
func (m *Manager) declareRoles(ctx context.Context) {
	book := newRoleBook()
	t := time.NewTicker(m.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		m.declareRound(ctx, book)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type roleJob struct {
	key, url, note string
	req            agent.RoleRequest
	node           meta.Node
}

// standbyRoles returns the declarations of a shard's standbys, without
// their connection strings.
func standbyRoles(s *shardSnap) []roleJob {
	p := s.primary()
	if p == nil {
		return nil
	}
	var jobs []roleJob
	for _, n := range s.nodes {
		if n.Name == p.Name || n.Agent == "" || n.DataDir == "" {
			continue
		}
		r := agent.RoleRequest{DataDir: n.DataDir, Epoch: s.shard.Epoch, Node: agent.NodeKey(s.cluster.Name, s.shard.Name, n.Name),
			Role: agent.RoleStandby, Sync: slices.Contains(s.shard.SyncSet, n.Name), Maintenance: n.Maintenance}
		note := fmt.Sprintf("%s epoch=%d sync=%t maintenance=%t dir=%s", r.Role, r.Epoch, r.Sync, r.Maintenance, r.DataDir)
		jobs = append(jobs, roleJob{key: nodeKey(s.cluster.Name, s.shard.Name, n.Name), url: n.Agent, note: note, req: r, node: n})
	}
	return jobs
}

func (m *Manager) declareRound(ctx context.Context, book *roleBook) {
	now := m.cfg.Now()
	var jobs []roleJob
	for _, s := range m.sharedSnapshot(ctx) {
		if s.op != nil && action.ReplacesPrimary(s.op) {
			continue // the roles are changing; declared once the new primary is recorded
		}
		var due []roleJob
		for _, j := range standbyRoles(&s) {
			if book.due(j.key, j.note, now) {
				due = append(due, j)
			}
		}
		if len(due) == 0 {
			continue // nothing to send: the password stays sealed
		}
		c := s.cluster
		pw, err := m.openPassword(&c)
		if err != nil {
			m.secretErr.log(m.log, c.Name, "open the password of cluster "+c.Name+"; its standbys' roles are not declared", err)
			continue
		}
		c.Settings.PGPassword = pw
		for _, j := range due {
			j.req.Conninfo = action.NodeConnInfo(c, j.node)
			jobs = append(jobs, j)
		}
	}
	timeout := min(m.cfg.LeaseTTL/3, time.Second)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			err := m.exec.Agents(j.url).Role(rctx, j.req)
			book.sent(j.key, j.note, now, err)
			if err != nil && ctx.Err() == nil {
				m.log.Debug("declare a standby's role", "node", j.req.Node, "agent", j.url, "err", err)
			}
		}()
	}
	wg.Wait()
}
