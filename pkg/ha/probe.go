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
// (whether it is down), so a follower probes every node only each
// followerSweep-th round (its own API's view), and in the other rounds
// the primaries the leader asks about or that it did not last see
// healthy (watch.go); a new leader decides on a shard only once it
// probed every node of it in its term (Manager.probedInTerm).
//
// The probes of a round are spread over the first half of the interval
// in probeSlots slots, each node in the slot of a hash of its key (so its
// period stays the interval): a fleet's probes never all start, and
// never wake every goroutine, at the same instant, while the probes of a
// slot share the poller's wake-ups. Each result is recorded as it comes,
// and a node whose last probe has not ended (a hung server) is skipped
// rather than waited for: it delays no other node's probe.
func (m *Manager) RunDetector(ctx context.Context) {
	var wg sync.WaitGroup
	defer m.det.Close()
	defer wg.Wait()
	wg.Add(2)
	go func() {
		defer wg.Done()
		m.sendViews(ctx)
	}()
	go func() {
		defer wg.Done()
		m.askWatchers(ctx)
	}()
	p := &prober{inflight: map[string]bool{}}
	t := time.NewTicker(m.cfg.ProbeInterval)
	defer t.Stop()
	for round := 0; ; round++ {
		sweep := round%followerSweep == 0 || m.store.IsLeader()
		now := time.Now()
		m.probeRound(ctx, p, &wg, now, func(t detector.Target) bool { return m.probesHere(t, sweep, now) }, true)
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				break wait
			case <-m.watch.kick:
				// The leader asks: probe what it asks about now, not at
				// the node's phase of the next round.
				now := time.Now()
				m.probeRound(ctx, p, &wg, now, func(t detector.Target) bool { return m.watch.watched(t.Key, now) }, false)
			}
		}
	}
}

// prober is the state of RunDetector's rounds: the nodes whose probe runs.
type prober struct {
	mu       sync.Mutex
	inflight map[string]bool
}

func (p *prober) start(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inflight[key] {
		return false
	}
	p.inflight[key] = true
	return true
}

func (p *prober) done(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.inflight, key)
}

const (
	// followerSweep: a follower probes every node each followerSweep-th
	// round, the primaries in every round.
	followerSweep = 10
	// probeSlots is how many times a round starts probes.
	probeSlots = 10
	// maxProbes bounds the probes under way at once on a replica. When
	// the machine cannot keep up, probes wait for a turn (their periods
	// stretch, which the probe metrics show) rather than thousands of
	// them becoming runnable at once and starving the replica's Raft
	// goroutines, whose heartbeats then miss and cost the group its
	// leader. A hung server holds its turn for the probe timeout: 1% of
	// a 10,000-node fleet hung holds 100 of them.
	maxProbes = 256
)

// probePhase is when, within a round started at 0, the node key is
// probed: the slot of a hash of its key, over the first half of the
// interval.
func probePhase(key string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return time.Duration(h.Sum64()%probeSlots) * (interval / 2 / probeSlots)
}

// probeRound starts the probe of every registered node that pick
// takes, at its phase after start when phased, else at once (on wg), and
// forgets the nodes no longer registered.
func (m *Manager) probeRound(ctx context.Context, p *prober, wg *sync.WaitGroup, start time.Time, pick func(detector.Target) bool, phased bool) {
	targets := m.targets(ctx)
	keep := make(map[string]bool, len(targets))
	for _, t := range targets {
		keep[t.Key] = true
		if !pick(t) || !p.start(t.Key) {
			continue
		}
		at := start
		if phased {
			at = start.Add(probePhase(t.Key, m.cfg.ProbeInterval))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer p.done(t.Key)
			if !sleepUntil(ctx, at) {
				return
			}
			m.probe(ctx, t)
		}()
	}
	for _, k := range m.obs.forget(keep) {
		m.det.Forget(k)
	}
}

// probe probes t, in its turn (maxProbes), and records the result.
func (m *Manager) probe(ctx context.Context, t detector.Target) {
	select {
	case m.probeTurns <- struct{}{}:
		defer func() { <-m.probeTurns }()
	case <-ctx.Done():
		return
	}
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

// sleepUntil waits until t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
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
