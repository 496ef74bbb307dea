package ha

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/clustermgr/clustermgr/pkg/action"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/decision"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/status"
)

// shardSnap is a copy of one shard's replicated state.
type shardSnap struct {
	cluster meta.Cluster // without shards
	shard   meta.Shard
	nodes   []meta.Node // sorted by name
	op      *meta.Operation
}

// sharedSnapshot returns a copy of every shard with its running
// operation, shared by its callers: they must not change it. It is copied again only when the fleet changed
// (meta.State.FleetGeneration: not for an event): the lease and role
// rounds read the whole fleet every third of the lease, and at 10,000
// nodes the copies cost a tenth of the leader's CPU; a failover's events
// made the lease slots copy it up to 20 times a second.
func (m *Manager) sharedSnapshot(ctx context.Context) []shardSnap {
	m.snapMu.Lock()
	defer m.snapMu.Unlock()
	m.refreshSnapshot(ctx)
	return m.snapList
}

// sharedSlot returns the shards of sharedSnapshot whose primaries' leases
// are renewed in slot (leaseSlot), shared likewise.
func (m *Manager) sharedSlot(ctx context.Context, slot int) []*shardSnap {
	m.snapMu.Lock()
	defer m.snapMu.Unlock()
	m.refreshSnapshot(ctx)
	return m.snapSlots[slot]
}

// sharedRound returns the shards of the shared snapshot whose rounds come
// in slot (of roundSlots).
func (m *Manager) sharedRound(ctx context.Context, slot int) []*shardSnap {
	m.snapMu.Lock()
	defer m.snapMu.Unlock()
	m.refreshSnapshot(ctx)
	return m.snapRounds[slot]
}

// refreshSnapshot copies the fleet again when it changed (an event or an
// audit record changes nothing there), with m.snapMu held.
func (m *Manager) refreshSnapshot(ctx context.Context) {
	_ = m.store.View(ctx, meta.Stale, func(st *meta.State) error {
		if m.snapList != nil && m.snapGen == st.FleetGeneration {
			return nil
		}
		m.snapList, m.snapGen = copyFleet(st), st.FleetGeneration
		m.snapSlots, m.snapRounds = [leaseSlots][]*shardSnap{}, [roundSlots][]*shardSnap{}
		for i := range m.snapList {
			s := &m.snapList[i]
			round := probeSlot(shardKey(s.cluster.Name, s.shard.Name))
			// The part of the renewal interval its primary's lease is
			// renewed in.
			lease := round % leaseSlots
			m.snapSlots[lease] = append(m.snapSlots[lease], s)
			m.snapRounds[round] = append(m.snapRounds[round], s)
		}
		return nil
	})
}

func copyFleet(st *meta.State) []shardSnap {
	out := []shardSnap{}
	running := map[string]*meta.Operation{}
	for _, op := range st.Operations {
		if !op.Finished() && op.Cluster != "" {
			o := *op
			o.Steps = append([]meta.OperationStep(nil), op.Steps...)
			running[shardKey(op.Cluster, op.Shard)] = &o
		}
	}
	for _, c := range st.Clusters {
		for _, sh := range c.Shards {
			out = append(out, snapOf(c, sh, running[shardKey(c.Name, sh.Name)]))
		}
	}
	return out
}

// snapOf copies one shard out of the state, with its running operation
// (already a copy).
func snapOf(c *meta.Cluster, sh *meta.Shard, op *meta.Operation) shardSnap {
	cl := *c
	cl.Shards = nil
	s := shardSnap{cluster: cl, shard: *sh, op: op}
	s.shard.Nodes = nil
	s.shard.SyncSet = append([]string(nil), sh.SyncSet...)
	s.shard.SyncPool = append([]string(nil), sh.SyncPool...)
	s.shard.PrimaryHistory = maps.Clone(sh.PrimaryHistory)
	s.nodes = make([]meta.Node, 0, len(sh.Nodes))
	for _, n := range sh.Nodes {
		s.nodes = append(s.nodes, *n)
	}
	sortNodes(s.nodes)
	return s
}

// shardSnapshot copies the one shard cluster/shard out of the state
// (false when it does not exist).
func (m *Manager) shardSnapshot(ctx context.Context, cluster, shard string) (shardSnap, bool) {
	key := shardKey(cluster, shard)
	s, ok := m.snapshotOf(ctx, map[string]bool{key: true})[key]
	if !ok {
		return shardSnap{}, false
	}
	return *s, true
}

// snapshotOf copies the shards of keys (cluster/shard) out of the state,
// each with its running operation; a key that names no shard is left
// out.
func (m *Manager) snapshotOf(ctx context.Context, keys map[string]bool) map[string]*shardSnap {
	out := make(map[string]*shardSnap, len(keys))
	_ = m.store.View(ctx, meta.Stale, func(st *meta.State) error {
		running := map[string]*meta.Operation{}
		for _, op := range st.Operations {
			if k := shardKey(op.Cluster, op.Shard); !op.Finished() && keys[k] {
				o := *op
				o.Steps = append([]meta.OperationStep(nil), op.Steps...)
				running[k] = &o
			}
		}
		for k := range keys {
			cluster, shard, _ := strings.Cut(k, "/")
			c, ok := st.Clusters[cluster]
			if !ok {
				continue
			}
			sh, ok := c.Shards[shard]
			if !ok {
				continue
			}
			s := snapOf(c, sh, running[k])
			out[k] = &s
		}
		return nil
	})
	return out
}

func sortNodes(ns []meta.Node) {
	slices.SortFunc(ns, func(a, b meta.Node) int { return strings.Compare(a.Name, b.Name) })
}

func (s *shardSnap) primary() *meta.Node {
	for i := range s.nodes {
		if s.nodes[i].Role == meta.RolePrimary {
			return &s.nodes[i]
		}
	}
	return nil
}

func (s *shardSnap) node(name string) *meta.Node {
	for i := range s.nodes {
		if s.nodes[i].Name == name {
			return &s.nodes[i]
		}
	}
	return nil
}

// LeaderTask is the leader-only part of the pipeline: it resumes
// unfinished operations and decides for every shard each interval, until
// ctx is cancelled; it waits for the operations it started.
func (m *Manager) LeaderTask(ctx context.Context) {
	wg := &sync.WaitGroup{}
	m.mu.Lock()
	m.term, m.termWG = ctx, wg
	m.termStart = m.cfg.Now()
	m.leases = newLeaseBook(m.cfg.Now(), m.cfg.LeaseTTL)
	m.mu.Unlock()
	m.ops.newTerm()
	m.work.newTerm()
	defer func() {
		wg.Wait()
		m.mu.Lock()
		m.term, m.termWG = nil, nil
		m.mu.Unlock()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.renewLeases(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.declareRoles(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.raiseLevel(ctx)
	}()
	// Each shard's round comes once an interval, in one of roundSlots
	// parts of it (by a hash of its key): the fleet's rounds are spread
	// over the interval rather than all started at once, which held the
	// API's answers up every second. A slot's rounds start together, each
	// on its goroutine, so no slot may hold many: 10 slots of 333 rounds
	// at 10,000 nodes kept both CPUs of the leader busy for milliseconds
	// at a time, and API answers waited for them.
	pace := newSlotPacer(time.Now(), m.cfg.ProbeInterval, roundSlots)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			for _, slot := range pace.due(time.Now()) {
				if slot == 0 {
					m.resumeUnfinished(ctx)
					m.runSchedules(ctx)
				}
				m.shardRounds(ctx, m.slotKeys(ctx, slot))
			}
			timer.Reset(pace.wait(time.Now()))
		case <-m.kick:
			// A node seen down here or in a follower's view: a round
			// of the kicked shards at once.
			if k := m.takeKicked(); len(k) > 0 {
				m.leaderRound(ctx, k)
			}
		}
	}
}

// roundSlots is how many parts each interval of the leader's rounds is
// cut into: as many as the probes' (a shard's lease slot is its round
// slot modulo leaseSlots).
const roundSlots = probeSlots

// slotKeys returns the keys of the shards whose rounds come in slot.
func (m *Manager) slotKeys(ctx context.Context, slot int) map[string]bool {
	shards := m.sharedRound(ctx, slot)
	keys := make(map[string]bool, len(shards))
	for _, s := range shards {
		keys[shardKey(s.cluster.Name, s.shard.Name)] = true
	}
	return keys
}

func (m *Manager) voters() []string {
	ids, err := m.memberIDs(true)
	if err != nil {
		return []string{m.store.ID()}
	}
	return ids
}

// memberIDs returns the ids of the Raft configuration's servers: its
// voters only, or every server.
func (m *Manager) memberIDs(votersOnly bool) ([]string, error) {
	info, err := m.store.Info()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, mem := range info.Members {
		if mem.Voter || !votersOnly {
			out = append(out, mem.ID)
		}
	}
	return out, nil
}

// input builds the decision input of a shard from this replica's views.
func (m *Manager) input(s *shardSnap, voters []string) decision.Input {
	in := decision.Input{
		Cluster: s.cluster.Name, Shard: s.shard.Name, Nodes: s.nodes, Views: map[string]decision.NodeView{},
		Voters: len(voters), AutoFailover: s.cluster.Settings.AutoFailover, SyncMode: s.shard.SyncMode(),
		SyncSet: s.shard.SyncSet, SyncPool: s.shard.SyncPool, MaxLag: s.shard.MaxLag(), Now: m.cfg.Now(), StreamGrace: m.streamGrace(),
		ParamsVersion: s.shard.ParamsVersion,
	}
	for _, n := range s.nodes {
		v := decision.NodeView{Health: status.Unknown}
		if nv, ok := m.obs.view(nodeKey(s.cluster.Name, s.shard.Name, n.Name)); ok {
			v.Health, v.Sample, v.UpSince, v.StreamedAt = nv.health, nv.sample, nv.upSince, nv.streamedAt
			if n.Role == meta.RolePrimary && nv.sample != nil && !nv.sample.InRecovery {
				in.PrimaryTimeline, in.PrimarySeenAt, in.PrimaryHistory = nv.sample.Timeline, nv.sample.At, nv.sample.History
			}
		}
		if n.Role == meta.RolePrimary {
			// The promotion recorded the primary's timeline: it counts
			// when no probe has seen the primary on it (it died at once),
			// and the primary was alive when it was recorded.
			if tl, h := recordedTimeline(s); tl > in.PrimaryTimeline {
				in.PrimaryTimeline, in.PrimaryHistory = tl, h
				if in.PrimarySeenAt.Before(s.shard.PromotedAt) {
					in.PrimarySeenAt = s.shard.PromotedAt
				}
			}
		}
		in.Views[n.Name] = v
	}
	if p := s.primary(); p != nil {
		in.DownVotes = m.votes(nodeKey(s.cluster.Name, s.shard.Name, p.Name), voters)
	}
	return in
}

// streamGrace is how long a standby may go without streaming before the
// policy counts it as not streaming: a few probes, and never under 2 s (a
// receiver reconnecting after a primary restart).
func (m *Manager) streamGrace() time.Duration {
	return max(3*m.cfg.ProbeInterval, 2*time.Second)
}

// resumeUnfinished starts every unfinished operation that no routine of
// this term runs: those a previous leader left, including ones whose shard
// does not exist yet (provisioning registers it last).
func (m *Manager) resumeUnfinished(ctx context.Context) {
	var ops []meta.Operation
	_ = m.store.View(ctx, meta.Stale, func(st *meta.State) error {
		for _, op := range st.Operations {
			if !op.Finished() {
				o := *op
				o.Steps = append([]meta.OperationStep(nil), op.Steps...)
				ops = append(ops, o)
			}
		}
		return nil
	})
	slices.SortFunc(ops, func(a, b meta.Operation) int { return strings.Compare(a.ID, b.ID) })
	for _, op := range ops {
		if r, _ := m.ops.current(shardKey(op.Cluster, op.Shard)); r == nil {
			m.log.Info("resuming unfinished operation", "op", op.ID, "kind", op.Kind, "shard", shardKey(op.Cluster, op.Shard))
			m.startOp(op)
		}
	}
}

// leaderRound resumes unfinished operations and runs the rounds of the
// shards of keys (shardRounds).
func (m *Manager) leaderRound(ctx context.Context, keys map[string]bool) {
	m.resumeUnfinished(ctx)
	m.runSchedules(ctx)
	m.shardRounds(ctx, keys)
}

// shardRounds gives every shard of keys without a running operation its
// own worker for this round: a shard whose SQL or agent hangs holds up
// only its own next round, never another shard's decision.
func (m *Manager) shardRounds(ctx context.Context, keys map[string]bool) {
	voters := m.voters()
	for _, s := range m.snapshotOf(ctx, keys) {
		if ctx.Err() != nil {
			return
		}
		key := shardKey(s.cluster.Name, s.shard.Name)
		if s.op != nil && !action.Preemptible(s.op.Kind) {
			continue
		}
		m.mu.Lock()
		wg := m.termWG
		if wg == nil || !m.work.claim(key) {
			m.mu.Unlock()
			continue
		}
		wg.Add(1)
		m.mu.Unlock()
		go func() {
			defer wg.Done()
			defer m.work.release(key)
			m.shardRound(ctx, s, voters)
		}()
	}
}

// shardRound is one shard's part of a leader round: record its
// transitions, decide, act, schedule backups. While a routine change (a
// repoint, a sync-set change) runs, only a failover is acted on: it
// preempts the change.
func (m *Manager) shardRound(ctx context.Context, s *shardSnap, voters []string) {
	key := shardKey(s.cluster.Name, s.shard.Name)
	m.mu.Lock()
	termStart := m.termStart
	m.mu.Unlock()
	if !m.probedSince(s, termStart) {
		// As a follower this replica probed the standbys seldom: a new
		// leader first probes every node of the shard.
		return
	}
	m.recordTransitions(ctx, s)
	r, ended := m.ops.current(key)
	if !m.probedSince(s, ended) {
		return
	}
	if r != nil || s.op != nil {
		if (r == nil || action.Preemptible(r.kind)) && (s.op == nil || action.Preemptible(s.op.Kind)) {
			m.decideDuringRoutine(ctx, s, voters)
		}
		return
	}
	m.decideShard(ctx, s, voters)
	if r, _ := m.ops.current(key); r == nil {
		m.scheduleBackups(ctx, s)
	}
}

// recordTransitions writes node health and shard state changes, as this
// leader sees them, to the event history; samples themselves never go to
// Raft.
func (m *Manager) recordTransitions(ctx context.Context, s *shardSnap) {
	sh := api.Shard{Cluster: s.cluster.Name, Name: s.shard.Name, Nodes: make([]api.Node, 0, len(s.nodes))}
	for _, n := range s.nodes {
		sh.Nodes = append(sh.Nodes, api.Node{Name: n.Name, Role: string(n.Role)})
	}
	m.decorateHealth(s, &sh)
	events := transitionEvents(&sh, m.work)
	for _, e := range events {
		_ = m.store.Apply(ctx, &meta.RecordEvent{Event: e})
	}
}

// transitionEvents returns the events of what changed in sh since this
// replica last recorded each node's health, its archiving and the shard's
// state (rec), and records the new ones.
// What it sees first of a node or shard is an event only when it is not
// healthy (nor unknown): a new leader over a healthy fleet records
// nothing, where one Raft entry per node and shard would evict the event
// history and, at 10,000 nodes, keep the group busy for seconds after
// each election. What recovered while no leader watched is therefore not
// in the history; the shard's state shows it.
//
// A suspect node (a probe failed, not yet enough to call it down) is not
// recorded, nor is a healthy shard turning degraded while one of its
// nodes is suspect: the last state recorded stands until the suspicion
// ends either way (degraded after a worse state is a recovery, recorded
// at once). On a loaded manager, probes that time out now and then made
// every blip two node and two shard events.
func transitionEvents(sh *api.Shard, rec recorded) []meta.Event {
	var events []meta.Event
	suspect := false
	for _, n := range sh.Nodes {
		k := nodeKey(sh.Cluster, sh.Name, n.Name)
		h := n.Status.Health
		if h == string(status.Suspect) {
			suspect = true
		} else if prev, ok := rec.swapRecorded(k, h); (ok && prev != h) || (!ok && h != string(status.Unknown) && h != string(status.Healthy)) {
			msg := fmt.Sprintf("%s is %s", n.Name, h)
			if ok {
				msg = fmt.Sprintf("%s: %s → %s", n.Name, prev, h)
			}
			if n.Status.Error != "" && h != string(status.Healthy) {
				msg += " (" + n.Status.Error + ")"
			}
			events = append(events, meta.Event{Kind: meta.EventNodeHealth, Cluster: sh.Cluster, Shard: sh.Name, Node: n.Name, Message: msg})
		}
		if prev, _ := rec.swapRecorded(k+"#archive", n.Status.ArchiveError); (n.Status.ArchiveError != "") != (prev != "") {
			msg := n.Name + ": WAL archiving works again"
			if n.Status.ArchiveError != "" {
				msg = n.Name + ": WAL archiving fails: " + n.Status.ArchiveError
			}
			events = append(events, meta.Event{Kind: meta.EventNodeHealth, Cluster: sh.Cluster, Shard: sh.Name, Node: n.Name, Message: msg})
		}
	}
	k := shardKey(sh.Cluster, sh.Name)
	prev, ok := rec.lastRecorded(k)
	if suspect && sh.State == string(status.ShardDegraded) && (!ok || prev == string(status.ShardHealthy)) {
		// Degraded may be the suspicion alone: healthy stands until it
		// ends. After a worse state, degraded is a recovery: recorded.
		return events
	}
	if (ok && prev != sh.State) || (!ok && sh.State != string(status.ShardHealthy)) {
		msg := "shard is " + sh.State
		if ok {
			msg = "shard: " + prev + " → " + sh.State
		}
		events = append(events, meta.Event{Kind: meta.EventShardState, Cluster: sh.Cluster, Shard: sh.Name, Message: msg})
	}
	rec.swapRecorded(k, sh.State)
	return events
}

// recorded is the states last recorded as events (workers).
type recorded interface {
	swapRecorded(key, state string) (prev string, ok bool)
	lastRecorded(key string) (state string, ok bool)
}

// probedSince reports whether every node of the shard has been probed
// after t (observer.probedSince).
func (m *Manager) probedSince(s *shardSnap, t time.Time) bool {
	keys := make([]string, 0, len(s.nodes))
	for _, n := range s.nodes {
		keys = append(keys, nodeKey(s.cluster.Name, s.shard.Name, n.Name))
	}
	return m.obs.probedSince(keys, t)
}

func (m *Manager) setDecision(key string, d decision.Decision) {
	out := api.Decision{At: m.cfg.Now(), Kind: string(d.Kind), Node: d.Node, Reason: d.Reason}
	for _, c := range d.Candidates {
		out.Candidates = append(out.Candidates, api.Candidate{Node: c.Node, LSN: lsnString(c.LSN), Timeline: c.Timeline,
			Priority: c.Priority, LagBytes: c.Lag, Chosen: c.Chosen, Rejected: c.Rejected})
	}
	m.work.setDecision(key, out)
}

// note records a refusal or problem as an event once per distinct reason.
func (m *Manager) note(ctx context.Context, s *shardSnap, node, reason string) {
	key := shardKey(s.cluster.Name, s.shard.Name)
	if !m.work.note(key, reason) {
		return
	}
	m.log.Warn("decision", "shard", key, "reason", reason)
	_ = m.store.Apply(ctx, &meta.RecordEvent{Event: meta.Event{Kind: meta.EventDecision, Cluster: s.cluster.Name, Shard: s.shard.Name, Node: node, Message: reason}})
}

func (m *Manager) decideShard(ctx context.Context, s *shardSnap, voters []string) {
	key := shardKey(s.cluster.Name, s.shard.Name)
	ds := decision.Decide(m.input(s, voters))
	if len(ds) == 0 || ds[0].Kind != decision.Failover {
		m.routineEnded(key, action.KindFailover, nil) // no failover is due: forget the refusals
	}
	if len(ds) == 0 {
		m.setDecision(key, decision.Decision{Kind: decision.None, Reason: "shard is healthy"})
		m.work.note(key, "")
		return
	}
	m.setDecision(key, ds[0])
	if !s.cluster.Settings.AutoFailover {
		// Paused: decide and explain, act on nothing but the parameters
		// an operator set.
		var configure []decision.Decision
		for _, d := range ds {
			if d.Kind == decision.Configure {
				configure = append(configure, d)
			}
		}
		if len(configure) == len(ds) {
			m.startConfigure(ctx, s, configure)
			return
		}
		if ds[0].Kind != decision.None {
			m.note(ctx, s, ds[0].Node, "automatic actions are paused; would "+string(ds[0].Kind)+": "+ds[0].Reason)
		} else {
			m.note(ctx, s, "", ds[0].Reason)
		}
		return
	}
	var repoint, syncSet, configure []decision.Decision
	for _, d := range ds {
		switch d.Kind {
		case decision.None:
			m.note(ctx, s, "", d.Reason)
		case decision.Failover:
			if m.retryLater(key, action.KindFailover) {
				m.note(ctx, s, d.Node, d.Reason+"; the last failover failed, tried again shortly")
				return
			}
			p := s.primary()
			from := ""
			if p != nil {
				from = p.Name
			}
			spec, err := m.failoverSpec(s, d.Node, false)
			if err != nil {
				m.note(ctx, s, d.Node, d.Reason+"; not started: "+err.Error())
				return
			}
			_, err = m.startOperation(ctx, meta.Operation{Kind: action.KindFailover, Cluster: s.cluster.Name, Shard: s.shard.Name,
				Target: d.Node, From: from, Epoch: s.shard.Epoch + 1, Reason: d.Reason, Spec: spec})
			if err != nil {
				m.log.Warn("start failover", "shard", key, "err", err)
			}
			return
		case decision.Rejoin:
			n := s.node(d.Node)
			nk := nodeKey(s.cluster.Name, s.shard.Name, d.Node)
			if n.Agent == "" || n.DataDir == "" {
				m.note(ctx, s, d.Node, d.Reason+"; it has no agent, so it must be rejoined by hand")
				continue
			}
			failedAt := m.lastFailedRejoin(ctx, s.cluster.Name, s.shard.Name, d.Node)
			m.ops.mu.Lock()
			if _, known := m.ops.rejoinAt[nk]; !known && !failedAt.IsZero() {
				// A rejoin another leader ran failed: its backoff holds
				// here too.
				m.ops.rejoinAt[nk] = failedAt.Add(m.cfg.RejoinBackoff)
			}
			wait := m.cfg.Now().Before(m.ops.rejoinAt[nk])
			if !wait {
				m.ops.rejoinAt[nk] = m.cfg.Now().Add(m.cfg.RejoinBackoff)
			}
			m.ops.mu.Unlock()
			if wait {
				continue
			}
			if _, err := m.startRejoin(ctx, s, d.Node, d.Diverged, d.Reason); err != nil {
				m.log.Warn("start rejoin", "shard", key, "node", d.Node, "err", err)
			}
			return
		case decision.Repoint:
			repoint = append(repoint, d)
		case decision.SyncSet:
			syncSet = append(syncSet, d)
		case decision.Configure:
			configure = append(configure, d)
		}
	}
	// The synchronous set first: with a dead synchronous standby every
	// commit waits until it changes. A kind that is backing off after a
	// failure leaves its turn to the other.
	if len(syncSet) > 0 && m.startRoutine(ctx, s, action.KindSyncSet, "", action.SyncSetSpec{Want: syncSet[0].SyncNames}, syncSet[0].Reason) {
		return
	}
	if len(repoint) > 0 {
		var nodes, reasons []string
		for _, d := range repoint {
			nodes, reasons = append(nodes, d.Node), append(reasons, d.Reason)
		}
		if m.startRoutine(ctx, s, action.KindRepoint, "", action.RepointSpec{Nodes: nodes}, strings.Join(reasons, "; ")) {
			return
		}
	}
	m.startConfigure(ctx, s, configure)
}

// startConfigure writes the shard's parameters to the first node of ds
// that lacks them (one operation per shard at a time; the next round
// takes the next node).
func (m *Manager) startConfigure(ctx context.Context, s *shardSnap, ds []decision.Decision) {
	if len(ds) > 0 {
		m.startRoutine(ctx, s, action.KindConfigure, ds[0].Node, nil, ds[0].Reason)
	}
}

// startNew records a new operation and runs it.
func (m *Manager) startNew(ctx context.Context, kind string, s *shardSnap, target, from string, epoch uint64, reason string) (meta.Operation, error) {
	return m.startOperation(ctx, meta.Operation{Kind: kind, Cluster: s.cluster.Name, Shard: s.shard.Name, Target: target, From: from, Epoch: epoch, Reason: reason})
}

// startOperation stamps an id and the steps into op, records it and runs
// it.
func (m *Manager) startOperation(ctx context.Context, op meta.Operation) (meta.Operation, error) {
	steps, err := m.exec.StepNames(&op)
	if err != nil {
		return meta.Operation{}, err
	}
	op.ID = fmt.Sprintf("%s-%s", op.Kind, m.cfg.Now().UTC().Format("20060102T150405.000000000"))
	op.State, op.Steps = meta.OpRunning, steps
	if err := m.store.Apply(ctx, &meta.PutOperation{Operation: op}); err != nil {
		return meta.Operation{}, err
	}
	m.startOp(op)
	return op, nil
}
