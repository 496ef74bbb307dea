package ha

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// TestTransitionEvents: the events a leader records of what it sees of a
// shard. A change from what this replica recorded last is an event; what
// it sees first of a node or shard is one only when it is not healthy
// (or unknown): a new leader over a healthy fleet of 10,000 nodes wrote
// 13,000 "is healthy" events, one Raft entry each, which evicted the whole
// event history and, repeated at each election, kept the group electing.
// A suspect node is not recorded, nor a shard degraded by one: on a
// loaded manager each probe timeout made four events.
func TestTransitionEvents(t *testing.T) {
	shard := func(state string, health ...string) api.Shard {
		sh := api.Shard{Cluster: "app", Name: "s1", State: state}
		for i, h := range health {
			n := api.Node{Name: []string{"pg1", "pg2"}[i], Status: &api.NodeStatus{Health: h}}
			if h == "down" {
				n.Status.Error = "connection refused"
			}
			sh.Nodes = append(sh.Nodes, n)
		}
		return sh
	}
	archiving := func(sh api.Shard, node, err string) api.Shard {
		for _, n := range sh.Nodes {
			if n.Name == node {
				n.Status.ArchiveError = err
			}
		}
		return sh
	}
	ev := func(kind, node, msg string) meta.Event {
		return meta.Event{Kind: kind, Cluster: "app", Shard: "s1", Node: node, Message: msg}
	}
	for _, tc := range []struct {
		name     string
		recorded map[string]string
		shard    api.Shard
		want     []meta.Event
	}{
		{"first sight of a healthy shard", nil, shard("healthy", "healthy", "healthy"), nil},
		{"first sight of an unknown node", nil, shard("healthy", "healthy", "unknown"), nil},
		{"first sight of a down node and a degraded shard", nil, shard("degraded", "healthy", "down"), []meta.Event{
			ev(meta.EventNodeHealth, "pg2", "pg2 is down (connection refused)"),
			ev(meta.EventShardState, "", "shard is degraded"),
		}},
		{"no change", map[string]string{"app/s1/pg1": "healthy", "app/s1/pg2": "healthy", "app/s1": "healthy"}, shard("healthy", "healthy", "healthy"), nil},
		{"a node goes down", map[string]string{"app/s1/pg1": "healthy", "app/s1/pg2": "healthy", "app/s1": "healthy"}, shard("degraded", "healthy", "down"), []meta.Event{
			ev(meta.EventNodeHealth, "pg2", "pg2: healthy → down (connection refused)"),
			ev(meta.EventShardState, "", "shard: healthy → degraded"),
		}},
		{"a node comes back", map[string]string{"app/s1/pg1": "healthy", "app/s1/pg2": "down", "app/s1": "degraded"}, shard("healthy", "healthy", "healthy"), []meta.Event{
			ev(meta.EventNodeHealth, "pg2", "pg2: down → healthy"),
			ev(meta.EventShardState, "", "shard: degraded → healthy"),
		}},
		{"a node is suspect", map[string]string{"app/s1/pg1": "healthy", "app/s1/pg2": "healthy", "app/s1": "healthy"}, shard("degraded", "healthy", "suspect"), nil},
		{"a suspect node is down", map[string]string{"app/s1/pg1": "healthy", "app/s1/pg2": "healthy", "app/s1": "healthy"}, shard("degraded", "healthy", "down"), []meta.Event{
			ev(meta.EventNodeHealth, "pg2", "pg2: healthy → down (connection refused)"),
			ev(meta.EventShardState, "", "shard: healthy → degraded"),
		}},
		{"the primary is back while a standby is suspect: a recovery, recorded", map[string]string{"app/s1/pg1": "down", "app/s1/pg2": "healthy", "app/s1": "no-primary"}, shard("degraded", "healthy", "suspect"), []meta.Event{
			ev(meta.EventNodeHealth, "pg1", "pg1: down → healthy"),
			ev(meta.EventShardState, "", "shard: no-primary → degraded"),
		}},
		{"archiving fails on a suspect node", map[string]string{"app/s1/pg1": "healthy", "app/s1/pg2": "healthy", "app/s1": "healthy"}, archiving(shard("degraded", "healthy", "suspect"), "pg2", "archive_command failed"), []meta.Event{
			ev(meta.EventNodeHealth, "pg2", "pg2: WAL archiving fails: archive_command failed"),
		}},
		{"first sight of a suspect primary", nil, shard("degraded", "suspect", "healthy"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorkers()
			for k, v := range tc.recorded {
				w.swapRecorded(k, v)
			}
			got := transitionEvents(&tc.shard, w)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}
