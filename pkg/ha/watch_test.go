package ha

import (
	"slices"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/collector"
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
// and each ask wakes the detector once.
func TestWatchList(t *testing.T) {
	w := newWatchList()
	t0 := time.Unix(1000, 0)
	w.add([]string{"c/s/pg1"}, t0.Add(3*time.Second))
	w.add([]string{"c/s/pg2"}, t0.Add(time.Second))
	select {
	case <-w.kick:
	default:
		t.Fatal("an ask did not wake the detector")
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
	w.add([]string{"c/s/pg1"}, t0.Add(5*time.Second))
	if !w.watched("c/s/pg1", t0.Add(4*time.Second)) {
		t.Error("a renewed ask did not extend the watch")
	}
}
