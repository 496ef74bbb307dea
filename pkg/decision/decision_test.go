package decision

import (
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/status"
)

const gib = 1 << 30

func node(name string, role meta.Role, port, prio int, tags ...string) meta.Node {
	return meta.Node{Name: name, Host: "10.0.0.1", Port: port, Role: role, Priority: prio, Tags: tags}
}

func primarySample(lsn collector.LSN, syncNames string) *collector.Sample {
	return &collector.Sample{Timeline: 1, CurrentLSN: lsn, SyncStandbyNames: syncNames}
}

// standby returns a standby sample; streamPort 0 means its receiver is not
// streaming.
func standby(lsn collector.LSN, timeline uint32, streamPort int) *collector.Sample {
	s := &collector.Sample{InRecovery: true, Timeline: timeline, ReceiveLSN: lsn, ReplayLSN: lsn}
	if streamPort != 0 {
		s.Receiver = &collector.Receiver{Status: "streaming", SenderHost: "10.0.0.1", SenderPort: streamPort, Timeline: timeline}
	}
	return s
}

func view(h status.Health, s *collector.Sample) NodeView { return NodeView{Health: h, Sample: s} }

// now is the decision time of the table tests (the scenario corpus in
// corpus_test.go holds the policy's cases; these helpers serve the few
// tests written in Go).
var now = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

// base is a shard whose primary pg1 (port 5432) is down, seen so by all
// three manager replicas, with standbys pg2, pg3 no longer streaming.
func base() Input {
	return Input{
		Cluster: "c", Shard: "s",
		Nodes: []meta.Node{node("pg1", meta.RolePrimary, 5432, 0), node("pg2", meta.RoleStandby, 5433, 1), node("pg3", meta.RoleStandby, 5434, 5)},
		Views: map[string]NodeView{
			"pg1": view(status.Down, primarySample(100*gib, "")),
			"pg2": view(status.Healthy, standby(100*gib, 1, 0)),
			"pg3": view(status.Healthy, standby(100*gib-1000, 1, 0)),
		},
		DownVotes: 3, Voters: 3, AutoFailover: true, SyncMode: meta.SyncOff, PrimaryTimeline: 1,
		Now: now, StreamGrace: 2 * time.Second,
	}
}

// healthy is a shard with a healthy primary pg1 and two streaming standbys.
func healthy() Input {
	in := base()
	in.Views = map[string]NodeView{
		"pg1": view(status.Healthy, primarySample(100*gib, "")),
		"pg2": view(status.Healthy, standby(100*gib, 1, 5432)),
		"pg3": view(status.Healthy, standby(100*gib-10, 1, 5432)),
	}
	return in
}

func TestSyncStandbyNames(t *testing.T) {
	if got := SyncStandbyNames(nil); got != "" {
		t.Fatal(got)
	}
	if got := SyncStandbyNames([]string{"a", "b"}); got != `FIRST 2 ("a", "b")` {
		t.Fatal(got)
	}
}
