package ha

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/detector"
)

// TestProber_CountsSkippedProbes: a round's probes that are not made are
// counted by reason (the metric clustermgr_probes_skipped_total): a node
// whose last probe still runs or still waits for a worker, a queue with
// no room, slots the next round overtook. Every node skipped is free for
// the next round; the probes the leader asks for are not counted.
func TestProber_CountsSkippedProbes(t *testing.T) {
	got := map[string]int{}
	p := newProber(3, func(reason string, n int) { got[reason] += n })
	var targets []detector.Target
	for i := range 9 {
		targets = append(targets, detector.Target{Key: fmt.Sprintf("app/s%d/pg1", i)})
	}
	for _, k := range []string{targets[0].Key, targets[1].Key, targets[2].Key} {
		if why := p.start(k); why != "" {
			t.Fatalf("%s not started: %s", k, why)
		}
	}
	p.run(targets[0].Key)
	p.run(targets[1].Key)
	all := func(slots [probeSlots][]*detector.Target) (out []*detector.Target) {
		for _, s := range slots {
			out = append(out, s...)
		}
		return out
	}
	asked := p.startAll(all(slotted(targets, func(t *detector.Target) bool { return t.Key == targets[0].Key })), false)
	if len(asked) != 0 || len(got) != 0 {
		t.Fatalf("an ask of a node being probed: %d probes, counted %v; want none", len(asked), got)
	}
	round := all(slotted(targets, func(t *detector.Target) bool { return t.Key != targets[8].Key }))
	if len(round) != 8 {
		t.Fatalf("%d targets in the round's slots, want 8", len(round))
	}
	// The slots come: all but the last, whose round ends first.
	started := p.startAll(round[:7], true)
	if len(started) != 4 {
		t.Fatalf("%d probes started, want 4", len(started))
	}
	p.enqueue(started) // room for 3
	p.count(skipLate, len(round[7:]))
	if want := map[string]int{skipRunning: 2, skipQueued: 1, skipQueueFull: 1, skipLate: 1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("skipped %v, want %v", got, want)
	}
	for _, tg := range append(append(started[3:], round[7:]...), &targets[8]) {
		if why := p.start(tg.Key); why != "" {
			t.Errorf("%s skipped but still taken: %s", tg.Key, why)
		}
	}
	for _, tg := range started[:3] {
		if why := p.start(tg.Key); why != skipQueued {
			t.Errorf("%s queued: start says %q, want %q", tg.Key, why, skipQueued)
		}
	}
}

// TestSlotAt: a round's slots start evenly over the interval, every
// 20 ms of a second (a node's probe is taken when its slot comes, so a
// late slot's nodes still have a whole interval for their last probe).
func TestSlotAt(t *testing.T) {
	const interval = time.Second
	var got, want []time.Duration
	for i := range probeSlots {
		got = append(got, slotAt(i, interval))
	}
	for at := time.Duration(0); at < interval; at += 20 * time.Millisecond {
		want = append(want, at)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("slots at %v, want %v", got, want)
	}
}

// TestSweepPart: a follower's sweep probes a tenth of the fleet each
// round, and a tenth of each slot's nodes: every part of 10,000 nodes
// holds about a thousand (within a fifth), and every pair of a slot and
// a part some.
func TestSweepPart(t *testing.T) {
	parts := make([]int, followerSweep)
	var pairs [probeSlots][followerSweep]int
	for i := range 10000 {
		key := fmt.Sprintf("app-%d/s%d/pg%d", i/30, i/3, i%3+1)
		parts[sweepPart(key)]++
		pairs[probeSlot(key)][sweepPart(key)]++
	}
	for p, n := range parts {
		if n < 800 || n > 1200 {
			t.Errorf("part %d holds %d nodes of 10,000, want about 1,000: %v", p, n, parts)
		}
	}
	for s := range pairs {
		for p, n := range pairs[s] {
			if n == 0 {
				t.Errorf("no node of slot %d is in part %d: %v", s, p, pairs[s])
			}
		}
	}
}

// TestProber_StartDue: a round's slots start when due, several at a late
// wake-up and the rest at the next tick; a slot more than half an
// interval late (a stalled replica) is dropped as late.
func TestProber_StartDue(t *testing.T) {
	const interval = time.Second
	step := interval / probeSlots
	got := map[string]int{}
	p := newProber(1<<10, func(reason string, n int) { got[reason] += n })
	var slots [probeSlots][]*detector.Target
	for i := range slots {
		slots[i] = []*detector.Target{{Key: fmt.Sprintf("app/s%d/pg1", i)}}
	}
	t0 := time.Unix(1000, 0)
	var trail []string
	at := func(now time.Duration, next int) int {
		n := p.startDue(&slots, next, t0, t0.Add(now), interval)
		trail = append(trail, fmt.Sprintf("at %v: slots %d to %d, %d queued, %d late", now, next, n, len(p.queue), got[skipLate]))
		return n
	}
	next := at(step/2, 0)                 // slot 0 only
	next = at(step*10, next)              // on time: slots 1 to 10
	next = at(step*10+interval*3/4, next) // a stall
	at(interval, next)                    // the next tick: every slot left
	// 50 slots, 20 ms apart: at 950 ms slots 11 to 47 are due, and 11 to
	// 22 are over 500 ms late.
	want := []string{
		"at 10ms: slots 0 to 1, 1 queued, 0 late",
		"at 200ms: slots 1 to 11, 11 queued, 0 late",
		"at 950ms: slots 11 to 48, 36 queued, 12 late",
		"at 1s: slots 48 to 50, 38 queued, 12 late",
	}
	if !slices.Equal(trail, want) {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(trail, "\n"), strings.Join(want, "\n"))
	}
}
