package ha

import (
	"context"
	"hash/fnv"
	"sync"
	"time"

	"github.com/clustermgr/clustermgr/pkg/detector"
)

// RunDetector probes every registered node once each interval until ctx
// ends, and waits for the probes it started. Every replica runs it; a
// follower sends what it sees down to the leader each interval, and at
// once when a node goes down.
//
// The leader probes every node each interval: its decisions need every
// node's sample. A follower's probes count only as votes on a primary
// (whether it is down), so a follower probes each node once in
// followerSweep rounds (its own API's view), a followerSweep-th of the
// fleet each round (sweepPart), and in every round the primaries the
// leader asks about or that it did not last see healthy (watch.go); a
// new leader decides on a shard only once it probed every node of it in
// its term (Manager.probedSince).
//
// The probes of a round are spread over the interval in probeSlots
// slots, each node in the slot of a hash of its key (so its period stays
// the interval): a fleet's probes never all start at the same instant,
// while the probes of a slot share the poller's wake-ups. They run on
// maxProbes workers that live as long as the detector (a goroutine and a
// timer per probe cost a 10,000-node leader a tenth of its CPU in stack
// growth and timer heaps). Each result is recorded as it comes, and a
// node whose last probe has not ended when its slot comes again (a hung
// server, or one still waiting for a worker) is skipped rather than
// waited for: it delays no other node's probe, and every node has a whole
// interval for its probe.
func (m *Manager) RunDetector(ctx context.Context) {
	var wg sync.WaitGroup
	defer m.det.Close()
	defer wg.Wait()
	defer m.det.Interrupt() // ctx is done: the probes waiting on a server end now
	p := newProber(maxQueued, m.cfg.ObserveSkipped)
	wg.Add(2 + maxProbes)
	go func() {
		defer wg.Done()
		m.sendViews(ctx)
	}()
	go func() {
		defer wg.Done()
		m.askWatchers(ctx)
	}()
	for range maxProbes {
		go func() {
			defer wg.Done()
			m.probeWorker(ctx, p)
		}()
	}
	tick := time.NewTicker(m.cfg.ProbeInterval)
	defer tick.Stop()
	slotTimer := time.NewTimer(0)
	defer slotTimer.Stop()
	interval := m.cfg.ProbeInterval
	// A round starts at its tick, not when the loop gets to it: its
	// slots keep their phase, and the last are due before the next tick.
	start := time.Now()
	for round := 0; ; round++ {
		// The first round sweeps every node: a replica that starts as a
		// follower shows them all within an interval.
		all, part := round == 0 || m.store.IsLeader(), round%followerSweep
		// The round's targets serve its asks too: building them walks the
		// whole state.
		targets := m.registered(ctx)
		slots := slotted(targets, func(t *detector.Target) bool {
			return m.probesHere(*t, all || sweepPart(t.Key) == part, start)
		})
		next := 0
		slotTimer.Reset(0)
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case t := <-tick.C:
				// The round's slots a late wake-up has not started yet.
				p.startDue(&slots, next, start, time.Now(), interval)
				start = t
				break wait
			case <-slotTimer.C:
				// Every slot due by now (a late wake-up runs several).
				if next = p.startDue(&slots, next, start, time.Now(), interval); next < probeSlots {
					slotTimer.Reset(time.Until(start.Add(slotAt(next, interval))))
				}
			case <-m.watch.kick:
				// The leader asks: probe what it has just asked about now,
				// not at the node's phase of the next round.
				now := time.Now()
				fresh := m.watch.takeFresh()
				for _, slot := range slotted(targets, func(t *detector.Target) bool { return fresh[t.Key] && m.probesNow(t.Key, now) }) {
					p.enqueue(p.startAll(slot, false))
				}
			}
		}
	}
}

// prober is the state of RunDetector's rounds: the nodes whose probe is
// queued or runs, and the queue the workers take probes from.
type prober struct {
	mu       sync.Mutex
	inflight map[string]probeState
	queue    chan *detector.Target
	skipped  func(reason string, n int) // nil: not counted
}

// probeState is where a node's probe is: taken by a round (its slot not
// yet due, or queued for a worker), or running on a worker.
type probeState uint8

const (
	probeQueued probeState = iota + 1
	probeRunning
)

// Why a round made no probe of a node (Config.ObserveSkipped).
const (
	skipRunning   = "running"    // its last probe still runs: a hung or slow server
	skipQueued    = "queued"     // its last probe still waits for a worker: the replica cannot keep up
	skipQueueFull = "queue-full" // the queue had no room
	skipLate      = "late"       // its slot came more than half an interval late: a stalled replica
)

func newProber(queued int, skipped func(reason string, n int)) *prober {
	return &prober{inflight: map[string]probeState{}, queue: make(chan *detector.Target, queued), skipped: skipped}
}

func (p *prober) count(reason string, n int) {
	if n > 0 && p.skipped != nil {
		p.skipped(reason, n)
	}
}

// start takes key's probe for a round; when its last probe has not ended,
// it says why instead ("" when taken).
func (p *prober) start(key string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.inflight[key] {
	case probeRunning:
		return skipRunning
	case probeQueued:
		return skipQueued
	}
	p.inflight[key] = probeQueued
	return ""
}

// run marks key's probe as taken by a worker.
func (p *prober) run(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inflight[key] = probeRunning
}

func (p *prober) done(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inflight, key)
}

// startDue starts the round's slots from next on that are due at now,
// and returns the first that is not. A slot due more than half an
// interval ago (a replica stalled for most of one) is dropped, counted as
// late: the next round probes its nodes.
func (p *prober) startDue(slots *[probeSlots][]*detector.Target, next int, start, now time.Time, interval time.Duration) int {
	for ; next < probeSlots; next++ {
		due := start.Add(slotAt(next, interval))
		if now.Before(due) {
			break
		}
		if now.Sub(due) > interval/2 {
			p.count(skipLate, len(slots[next]))
			continue
		}
		p.enqueue(p.startAll(slots[next], true))
	}
	return next
}

// startAll starts the probes of ts whose last probe has ended, and
// returns them; with count set, the others are counted as skipped.
func (p *prober) startAll(ts []*detector.Target, count bool) []*detector.Target {
	var out []*detector.Target
	var running, queued int
	for _, t := range ts {
		switch p.start(t.Key) {
		case skipRunning:
			running++
		case skipQueued:
			queued++
		default:
			out = append(out, t)
		}
	}
	if count {
		p.count(skipRunning, running)
		p.count(skipQueued, queued)
	}
	return out
}

// enqueue queues the probes of ts (started already); a probe the queue
// has no room for is dropped (its node is probed next round).
func (p *prober) enqueue(ts []*detector.Target) {
	for i, t := range ts {
		select {
		case p.queue <- t:
		default:
			p.skip(skipQueueFull, ts[i:])
			return
		}
	}
}

// skip forgets the probes of ts, started but never queued, for reason.
func (p *prober) skip(reason string, ts []*detector.Target) {
	for _, t := range ts {
		p.done(t.Key)
	}
	p.count(reason, len(ts))
}

const (
	// followerSweep: a follower probes each node once in followerSweep
	// rounds (a followerSweep-th of the fleet each round: all of it in
	// one round made every tenth second of a 10,000-node group carry three
	// times the probes), the primaries it watches in every round.
	followerSweep = 10
	// probeSlots is how many times a round starts probes: at 10,000
	// nodes, 200 every 20 ms. (With 10 slots of 1,000 a 10,000-node
	// leader's probe p99 was 1.24 s, with 50 1.13 s, one run each: a
	// smaller batch waits less for the workers.)
	probeSlots = 50
	// maxProbes is how many probes run at once on a replica (its probe
	// workers). When the machine cannot keep up, probes wait in the
	// queue (their periods stretch: clustermgr_probes_skipped_total) rather
	// than thousands of them becoming runnable at once and starving the
	// replica's Raft goroutines, whose heartbeats then miss and cost the
	// group its leader. A hung server holds a worker for the probe
	// timeout: 1% of a 10,000-node fleet hung holds 50 of them. With
	// 1,024 workers a 10,000-node group on two cores shared with the
	// simulator lost its leader 20 times in 5 minutes; with 384 it
	// skipped more probes as queued than with 256 (622 a second against
	// 254-540): the answers only took longer, as the probes wait for a
	// CPU there, not for a worker.
	maxProbes = 256
	// maxQueued bounds the probes waiting for a worker (a node has at
	// most one); past it a round's probes are dropped.
	maxQueued = 1 << 16
)

// slotAt is when, within a round, slot i's probes start: the slots
// spread evenly over the interval. A node's probe is taken when its slot
// comes (startAll), so it has the whole interval to end before it is
// skipped, whichever its slot. Spread over the interval rather than its
// first half, a fleet's probes come at half the rate, and a replica that
// keeps up with them keeps no backlog that delays the late slots more in
// one round than in the next.
func slotAt(i int, interval time.Duration) time.Duration {
	return time.Duration(i) * (interval / probeSlots)
}

// probeSlot is the slot in which the node key is probed each round: a
// hash of its key.
func probeSlot(key string) int { return int(keyHash(key) % probeSlots) }

// sweepPart is the round, of followerSweep, in which a follower probes
// the node key in its sweep: a part of a hash of its key that is not its
// slot's, so each slot's nodes are spread over the rounds too.
func sweepPart(key string) int { return int(keyHash(key) / probeSlots % followerSweep) }

// keyHash spreads keys over slots and periods (probes, leases, rounds,
// role refreshes).
func keyHash(key string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return h.Sum64()
}

// registered returns the registered nodes to probe and forgets the
// nodes no longer registered.
func (m *Manager) registered(ctx context.Context) []detector.Target {
	targets := m.targets(ctx)
	keep := make(map[string]bool, len(targets))
	for i := range targets {
		keep[targets[i].Key] = true
	}
	for _, k := range m.obs.forget(keep) {
		m.det.Forget(k)
	}
	return targets
}

// slotted returns the targets pick takes, by slot.
func slotted(targets []detector.Target, pick func(*detector.Target) bool) (slots [probeSlots][]*detector.Target) {
	for i := range targets {
		if t := &targets[i]; pick(t) {
			s := probeSlot(t.Key)
			slots[s] = append(slots[s], t)
		}
	}
	return slots
}

// probeWorker runs queued probes until ctx ends.
func (m *Manager) probeWorker(ctx context.Context, p *prober) {
	for {
		select {
		case <-ctx.Done():
			return
		case t := <-p.queue:
			p.run(t.Key)
			m.probe(ctx, *t)
			p.done(t.Key)
		}
	}
}

// probe probes t and records the result.
func (m *Manager) probe(ctx context.Context, t detector.Target) {
	began := time.Now()
	asks := t.Primary && m.store.IsLeader()
	if asks {
		// Still unanswered after a quarter of the timeout: the followers
		// start their probes of it now (watch.go).
		late := time.AfterFunc(m.cfg.ProbeTimeout/4, func() { m.asks.ask(t.Key) })
		defer late.Stop()
	}
	res := m.det.Probe(ctx, t)
	if ctx.Err() != nil {
		return
	}
	if asks && !res.OK {
		m.asks.ask(t.Key)
	}
	if m.cfg.ObserveProbe != nil {
		m.cfg.ObserveProbe(time.Since(began), res.OK)
	}
	m.obs.record(res)
}

// sendViews sends this replica's view to the leader while it follows:
// each interval, and at once when a node goes down here.
func (m *Manager) sendViews(ctx context.Context) {
	t := time.NewTicker(m.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.viewKick:
		}
		if !m.store.IsLeader() {
			m.sendView(ctx)
		}
	}
}

// kickView asks sendViews to send the view now (no-op when it is asked
// already).
func (m *Manager) kickView() {
	select {
	case m.viewKick <- struct{}{}:
	default:
	}
}
