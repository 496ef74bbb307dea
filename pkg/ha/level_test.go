package ha

import (
	"log/slog"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
)

// TestEveryReplicaApplies: the leader raises the group's level only once
// every other replica in the configuration has said, in a view of the
// last five probe intervals, that its build applies it.
func TestEveryReplicaApplies(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	o := newObserver(1, time.Second, 500*time.Millisecond, func() time.Time { return now }, func() string { return "m1" }, func(string) {}, func() {}, slog.New(slog.DiscardHandler))
	o.observePeer(api.PeerView{Replica: "m4", Level: 2}) // then silent
	now = now.Add(6 * time.Second)
	o.observePeer(api.PeerView{Replica: "m2", Level: 2})
	o.observePeer(api.PeerView{Replica: "m3"}) // a build before levels
	o.observePeer(api.PeerView{Replica: "m5", Level: 3})
	levels := o.peerLevels()
	for _, tc := range []struct {
		name    string
		members []string
		want    bool
	}{
		{"the leader alone", []string{"m1"}, true},
		{"every follower applies it", []string{"m1", "m2", "m5"}, true},
		{"a follower of an older build", []string{"m1", "m2", "m3"}, false},
		{"a follower not heard from lately", []string{"m1", "m2", "m4"}, false},
		{"a follower never heard from", []string{"m1", "m2", "m6"}, false},
		{"no configuration read", nil, false},
	} {
		if got := everyReplicaApplies(tc.members, "m1", levels, 2); got != tc.want {
			t.Errorf("%s: %v, want %v (levels %v)", tc.name, got, tc.want, levels)
		}
	}
}
