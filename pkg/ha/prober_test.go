package ha

import (
	"fmt"
	"reflect"
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
	if asked := all(slotted(p, targets, func(t *detector.Target) bool { return t.Key == targets[0].Key }, false)); len(asked) != 0 || len(got) != 0 {
		t.Fatalf("an ask of a node being probed: %d probes, counted %v; want none", len(asked), got)
	}
	round := all(slotted(p, targets, func(t *detector.Target) bool { return t.Key != targets[8].Key }, true))
	if len(round) != 5 {
		t.Fatalf("%d probes in the round's slots, want 5", len(round))
	}
	p.enqueue(round[:4]) // room for 3
	p.skip(skipLate, round[4:])
	if want := map[string]int{skipRunning: 2, skipQueued: 1, skipQueueFull: 1, skipLate: 1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("skipped %v, want %v", got, want)
	}
	for _, tg := range append(round[3:], &targets[8]) {
		if why := p.start(tg.Key); why != "" {
			t.Errorf("%s skipped but still taken: %s", tg.Key, why)
		}
	}
	for _, tg := range round[:3] {
		if why := p.start(tg.Key); why != skipQueued {
			t.Errorf("%s queued: start says %q, want %q", tg.Key, why, skipQueued)
		}
	}
}

// TestSlotAt: a round's slots start evenly over the first half of the
// interval, so the last one leaves its nodes more than half the interval
// for their last probe to end.
func TestSlotAt(t *testing.T) {
	const interval = time.Second
	var got []time.Duration
	for i := range probeSlots {
		got = append(got, slotAt(i, interval))
	}
	want := []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 200 * time.Millisecond,
		250 * time.Millisecond, 300 * time.Millisecond, 350 * time.Millisecond, 400 * time.Millisecond, 450 * time.Millisecond}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("slots at %v, want %v", got, want)
	}
}
