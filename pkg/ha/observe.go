package ha

import (
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/detector"
	"github.com/clustermgr/clustermgr/pkg/status"
)

// observer is this replica's observation of the fleet: each node's health
// state machine and latest sample from its own probes, and the views the
// followers send (their votes). Every replica keeps one; the leader's
// workers read copies of it (nodeView). It has its own lock: a worker
// waiting on a shard's SQL or agent never holds it.
type observer struct {
	threshold int
	interval  time.Duration
	timeout   time.Duration // a probe's
	now       func() time.Time
	self      func() string    // this replica's id
	kick      func(key string) // asks the leader for a round of the node's shard now
	kickView  func()           // asks a follower to send its view now
	log       *slog.Logger

	mu    sync.Mutex
	nodes map[string]*nodeState // node key →
	peers map[string]peerView   // replica id → its last view
}

// nodeState is what this replica knows of one node.
type nodeState struct {
	machine *status.Node
	last    detector.Result
	sample  *collector.Sample // latest successful sample
	// upSince is the first of the current run of answered probes;
	// streamedAt the last probe that found a streaming WAL receiver.
	upSince, streamedAt time.Time
	// lastOK is the time of the previous answered probe; recorded when
	// the last probe's result came.
	lastOK, recorded time.Time
}

type peerView struct {
	at    time.Time
	down  map[string]bool
	keys  []string // ids of the secret keys the replica holds
	level int      // the highest meta.Level its build applies
}

// nodeView is a copy of what the observer knows of one node.
type nodeView struct {
	health              status.Health
	last                detector.Result
	sample              *collector.Sample // never modified once recorded
	upSince, streamedAt time.Time
}

func newObserver(threshold int, interval, timeout time.Duration, now func() time.Time, self func() string, kick func(key string), kickView func(), log *slog.Logger) *observer {
	return &observer{threshold: threshold, interval: interval, timeout: timeout, now: now, self: self, kick: kick, kickView: kickView, log: log,
		nodes: map[string]*nodeState{}, peers: map[string]peerView{}}
}

// record feeds a probe's result to its node's state machine.
func (o *observer) record(r detector.Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ns, ok := o.nodes[r.Key]
	if !ok {
		ns = &nodeState{machine: status.NewNode(o.threshold)}
		o.nodes[r.Key] = ns
	}
	ev := status.ProbeOK
	switch {
	case r.Refused:
		ev = status.ProbeRefused
	case !r.OK:
		ev = status.ProbeFailed
	}
	before := ns.machine.State()
	after, changed := ns.machine.Observe(ev)
	ns.last, ns.recorded = r, o.now()
	if r.OK {
		if ns.sample == nil || before != status.Healthy {
			ns.upSince = r.At
		}
		wasStreaming := !ns.streamedAt.IsZero() && ns.streamedAt.Equal(ns.lastOK)
		ns.sample = r.Sample
		if rc := r.Sample.Receiver; rc != nil && rc.Status == "streaming" {
			ns.streamedAt = r.At
		} else if wasStreaming && r.Sample.InRecovery {
			// A receiver that stops may be the last thing holding a
			// failover back: decide now, not at the next tick.
			o.kick(r.Key)
		}
		ns.lastOK = r.At
	}
	if changed && before != status.Unknown {
		o.log.Info("node health changed", "node", r.Key, "from", before, "to", after, "err", r.Err)
	}
	if changed && after == status.Down {
		o.kick(r.Key)
		o.kickView()
	}
}

// forget drops every node not in keep and returns their keys.
func (o *observer) forget(keep map[string]bool) (gone []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k := range o.nodes {
		if !keep[k] {
			delete(o.nodes, k)
			gone = append(gone, k)
		}
	}
	return gone
}

// view returns a copy of what is known of node key.
func (o *observer) view(key string) (nodeView, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ns, ok := o.nodes[key]
	if !ok {
		return nodeView{health: status.Unknown}, false
	}
	return nodeView{health: ns.machine.State(), last: ns.last, sample: ns.sample, upSince: ns.upSince, streamedAt: ns.streamedAt}, true
}

// down returns the nodes this replica sees down, sorted: the view a
// follower sends to the leader. Only a result that came in the last
// three intervals (and a probe timeout: a hung server's) counts: a
// follower probes a standby only in its sweeps, and a standby seen down
// at the last one may be the primary now (a down primary it probes each
// round).
func (o *observer) down() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	down := []string{}
	recent := o.now().Add(-3*o.interval - o.timeout)
	for k, ns := range o.nodes {
		if ns.machine.State() == status.Down && ns.recorded.After(recent) {
			down = append(down, k)
		}
	}
	sort.Strings(down)
	return down
}

// observePeer records a follower's view and returns the nodes it sees
// down that it did not before.
func (o *observer) observePeer(v api.PeerView) (newlyDown []string) {
	down := map[string]bool{}
	for _, k := range v.Down {
		down[k] = true
	}
	o.mu.Lock()
	prev := o.peers[v.Replica].down
	o.peers[v.Replica] = peerView{at: o.now(), down: down, keys: append([]string(nil), v.Keys...), level: max(v.Level, 1)}
	o.mu.Unlock()
	for k := range down {
		if !prev[k] {
			newlyDown = append(newlyDown, k)
		}
	}
	return newlyDown
}

// votes returns how many of voters (this replica included) see key down:
// this replica's own state, and each follower's view when it is fresh
// (sent within five probe intervals).
func (o *observer) votes(key string, voters []string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	if ns, ok := o.nodes[key]; ok && ns.machine.State() == status.Down {
		n++
	}
	fresh := o.now().Add(-5 * o.interval)
	self := o.self()
	for _, id := range voters {
		if id == self {
			continue
		}
		if pv, ok := o.peers[id]; ok && pv.at.After(fresh) && pv.down[key] {
			n++
		}
	}
	return n
}

// peerKeys returns the secret key ids of each follower whose view is
// fresh (sent within five probe intervals).
func (o *observer) peerKeys() map[string][]string {
	return freshPeers(o, func(pv peerView) []string { return pv.keys })
}

// peerLevels returns the level each follower whose view is fresh applies.
func (o *observer) peerLevels() map[string]int {
	return freshPeers(o, func(pv peerView) int { return pv.level })
}

// freshPeers returns what of returns for each follower whose view was
// sent within five probe intervals.
func freshPeers[T any](o *observer, of func(peerView) T) map[string]T {
	o.mu.Lock()
	defer o.mu.Unlock()
	fresh := o.now().Add(-5 * o.interval)
	out := map[string]T{}
	for id, pv := range o.peers {
		if pv.at.After(fresh) {
			out[id] = of(pv)
		}
	}
	return out
}

// probedSince reports whether every one of keys has been probed after t:
// what was seen while an operation ran is no ground for the next
// decision.
func (o *observer) probedSince(keys []string, t time.Time) bool {
	if t.IsZero() {
		return true
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, k := range keys {
		ns, ok := o.nodes[k]
		if !ok || !ns.last.At.After(t) {
			return false
		}
	}
	return true
}
