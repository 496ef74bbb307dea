package ha

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/detector"
	"github.com/clustermgr/clustermgr/pkg/status"
)

// TestFollowerProbes: outside its sweeps a follower probes a primary only
// while its vote may be needed or its look is not of a healthy primary.
func TestFollowerProbes(t *testing.T) {
	primary := &collector.Sample{}
	promoting := &collector.Sample{InRecovery: true}
	healthy := nodeView{health: status.Healthy, sample: primary}
	cases := []struct {
		name               string
		leaderAsks, watchd bool
		v                  nodeView
		known              bool
		want               bool
	}{
		{"a leader that does not ask: every round", false, false, healthy, true, true},
		{"healthy primary, not asked about", true, false, healthy, true, false},
		{"healthy primary the leader asks about", true, true, healthy, true, true},
		{"never probed here", true, false, nodeView{health: status.Unknown}, false, true},
		{"suspect here", true, false, nodeView{health: status.Suspect, sample: primary}, true, true},
		{"down here", true, false, nodeView{health: status.Down, sample: primary}, true, true},
		{"answered, never with a sample", true, false, nodeView{health: status.Healthy}, true, true},
		{"last seen in recovery (being promoted)", true, false, nodeView{health: status.Healthy, sample: promoting}, true, true},
	}
	var got, want []string
	for _, c := range cases {
		if followerProbes(c.leaderAsks, c.watchd, c.v, c.known) {
			got = append(got, c.name)
		}
		if c.want {
			want = append(want, c.name)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("probed:\n%q\nwant:\n%q", got, want)
	}
}

// TestWatchList: a watch lasts until its end, is renewed by a new ask,
// and each ask wakes the detector with just the keys asked since; ended
// watches are forgotten.
func TestWatchList(t *testing.T) {
	w := newWatchList()
	t0 := time.Unix(1000, 0)
	w.add([]string{"c/s/pg1"}, t0, t0.Add(3*time.Second))
	w.add([]string{"c/s/pg2"}, t0, t0.Add(time.Second))
	select {
	case <-w.kick:
	default:
		t.Fatal("an ask did not wake the detector")
	}
	if got := w.takeFresh(); len(got) != 2 || !got["c/s/pg1"] || !got["c/s/pg2"] {
		t.Fatalf("fresh keys %v, want pg1 and pg2", got)
	}
	if got := w.takeFresh(); len(got) != 0 {
		t.Fatalf("fresh keys taken twice: %v", got)
	}
	steps := []struct {
		at   time.Duration
		key  string
		want bool
	}{
		{0, "c/s/pg1", true},
		{0, "c/s/pg3", false},
		{999 * time.Millisecond, "c/s/pg2", true},
		{time.Second, "c/s/pg2", false},
		{2 * time.Second, "c/s/pg1", true},
		{3 * time.Second, "c/s/pg1", false},
	}
	for _, s := range steps {
		if got := w.watched(s.key, t0.Add(s.at)); got != s.want {
			t.Errorf("%s at +%v: watched %v, want %v", s.key, s.at, got, s.want)
		}
	}
	w.add([]string{"c/s/pg1"}, t0.Add(4*time.Second), t0.Add(7*time.Second))
	if !w.watched("c/s/pg1", t0.Add(6*time.Second)) {
		t.Error("a renewed ask did not extend the watch")
	}
	if _, ok := w.until["c/s/pg2"]; ok {
		t.Error("an ended watch was kept")
	}
}

// TestWatchAsks: the leader sends each follower one request at a time,
// with what was asked while the last was under way, and an empty one
// each interval to show that its asks reach it.
func TestWatchAsks(t *testing.T) {
	a := newWatchAsks()
	f := []string{"m2", "m3"}
	t0 := time.Unix(1000, 0)
	type step struct {
		name string
		do   func() any
		want any
	}
	steps := []step{
		{"nothing asked, no tick: no request", func() any { return a.due(f, false) }, map[string][]string{}},
		{"the tick: an empty request each", func() any { return a.due(f, true) }, map[string][]string{"m2": {}, "m3": {}}},
		{"asked while both are under way: held", func() any { a.ask("c/s/pg1"); return a.due(f, true) }, map[string][]string{}},
		{"m2 took its request: more is pending for it", func() any { return a.sent("m2", true, t0) }, true},
		{"m3 failed", func() any { return a.sent("m3", false, t0) }, true},
		{"each gets pg1", func() any { a.ask("c/s/pg2"); return a.due(f, false) }, map[string][]string{"m2": {"c/s/pg1", "c/s/pg2"}, "m3": {"c/s/pg1", "c/s/pg2"}}},
		{"m2 reached since t0-1s", func() any { return a.reaches("m2", t0.Add(-time.Second)) }, true},
		{"m3 never reached", func() any { return a.reaches("m3", t0.Add(-time.Second)) }, false},
		{"m2 done, nothing more", func() any { return a.sent("m2", true, t0.Add(time.Second)) }, false},
	}
	var got, want []string
	for _, s := range steps {
		got = append(got, fmt.Sprintf("%s: %v", s.name, s.do()))
		want = append(want, fmt.Sprintf("%s: %v", s.name, s.want))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestObserver_DownCountsOnlyRecentProbes: a follower's view names a
// node down only while its last probe of it is recent, so a standby seen
// down at a sweep and promoted since gets no stale vote.
func TestObserver_DownCountsOnlyRecentProbes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	now := t0
	o := newObserver(1, time.Second, 500*time.Millisecond, func() time.Time { return now }, func() string { return "m2" }, func(string) {}, func() {}, slog.New(slog.DiscardHandler))
	// Results as they come: pg3's 4 s ago, pg2's 3 s ago, a hung pg5's
	// probe that started 5 s ago and timed out 3 s ago, pg1's now.
	record := func(ago time.Duration, r detector.Result) {
		now = t0.Add(-ago)
		o.record(r)
	}
	record(4*time.Second, detector.Result{Key: "c/s/pg3", At: t0.Add(-4 * time.Second), Refused: true})
	record(3*time.Second, detector.Result{Key: "c/s/pg2", At: t0.Add(-3 * time.Second), Refused: true})
	record(3*time.Second, detector.Result{Key: "c/s/pg5", At: t0.Add(-5 * time.Second), Err: "timeout"})
	record(0, detector.Result{Key: "c/s/pg1", At: t0, Refused: true})
	record(0, detector.Result{Key: "c/s/pg4", At: t0, OK: true, Sample: &collector.Sample{}})
	if got, want := o.down(), []string{"c/s/pg1", "c/s/pg2", "c/s/pg5"}; !slices.Equal(got, want) {
		t.Fatalf("down %q, want %q", got, want)
	}
}
