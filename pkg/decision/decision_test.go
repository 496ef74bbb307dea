package decision

import (
	"strings"
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

// now is the decision time of the table tests.
var now = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

// upFor is a healthy node that has answered for d and never streamed.
func upFor(s *collector.Sample, d time.Duration) NodeView {
	return NodeView{Health: status.Healthy, Sample: s, UpSince: now.Add(-d)}
}

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

func TestDecide_Failover(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(in *Input)
		kind   Kind
		node   string
		reason string
		reject map[string]string // candidate → part of its rejection
	}{
		{"highest LSN wins", func(in *Input) {}, Failover, "pg2", "promote pg2", nil},
		{"priority breaks an LSN tie", func(in *Input) { in.Views["pg3"] = view(status.Healthy, standby(100*gib, 1, 0)) }, Failover, "pg3", "priority 5", nil},
		{"name breaks a full tie", func(in *Input) {
			in.Nodes[2].Priority = 1
			in.Views["pg3"] = view(status.Healthy, standby(100*gib, 1, 0))
		}, Failover, "pg2", "promote pg2", nil},
		{"NoFailoverWhilePaused", func(in *Input) { in.AutoFailover = false }, None, "", "paused", nil},
		{"NoFailoverWithoutMajority", func(in *Input) { in.DownVotes = 1 }, None, "", "1 of 3 manager replicas", nil},
		{"NoFailoverWithHalfOfFour", func(in *Input) { in.DownVotes, in.Voters = 2, 4 }, None, "", "2 of 4", nil},
		{"MajorityOfFive", func(in *Input) { in.DownVotes, in.Voters = 3, 5 }, Failover, "pg2", "3 of 5", nil},
		{"NoFailoverWhileStandbyStillStreams", func(in *Input) { in.Views["pg3"] = view(status.Healthy, standby(100*gib, 1, 5432)) }, None, "", "pg3 still receives WAL", nil},
		{"nofailover tag rejected", func(in *Input) { in.Nodes[1].Tags = []string{meta.TagNoFailover} }, Failover, "pg3", "promote pg3",
			map[string]string{"pg2": "nofailover"}},
		{"unhealthy standby rejected", func(in *Input) { in.Views["pg2"] = view(status.Suspect, standby(100*gib, 1, 0)) }, Failover, "pg3", "promote pg3",
			map[string]string{"pg2": "not healthy (suspect)"}},
		{"other timeline rejected", func(in *Input) { in.Views["pg2"] = view(status.Healthy, standby(101*gib, 2, 0)) }, Failover, "pg3", "promote pg3",
			map[string]string{"pg2": "timeline 2"}},
		{"lagging standby rejected", func(in *Input) {
			in.Views["pg3"] = view(status.Healthy, standby(99*gib, 1, 0))
			in.MaxLag = 1 << 20
		}, Failover, "pg2", "promote pg2", map[string]string{"pg3": "bytes behind the best standby"}},
		{"writable standby rejected", func(in *Input) { in.Views["pg2"] = view(status.Healthy, primarySample(200*gib, "")) }, Failover, "pg3", "promote pg3",
			map[string]string{"pg2": "not a standby"}},
		{"no candidate at all", func(in *Input) {
			in.Views["pg2"] = view(status.Down, nil)
			in.Views["pg3"] = view(status.Down, nil)
		}, None, "", "no standby can be promoted", map[string]string{"pg2": "not healthy", "pg3": "not healthy"}},
		{"sync mode promotes only the sync set", func(in *Input) {
			in.SyncMode, in.SyncSet = meta.SyncOn, []string{"pg3"}
		}, Failover, "pg3", "promote pg3", map[string]string{"pg2": "not in the synchronous set"}},
		{"NoFailoverInSyncModeWithoutSyncSet", func(in *Input) { in.SyncMode = meta.SyncStrict }, None, "", "no synchronous standby is recorded", nil},
		{"sync standby unhealthy: no failover", func(in *Input) {
			in.SyncMode, in.SyncSet = meta.SyncOn, []string{"pg3"}
			in.Views["pg3"] = view(status.Down, nil)
		}, None, "", "no standby can be promoted", map[string]string{"pg2": "synchronous set"}},
		{"no declared primary", func(in *Input) { in.Nodes[0].Role = meta.RoleStandby; in.Views["pg1"] = view(status.Down, nil) }, Failover, "pg2", "no primary is declared", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.mutate(&in)
			ds := Decide(in)
			if len(ds) != 1 {
				t.Fatalf("decisions %+v", ds)
			}
			d := ds[0]
			if d.Kind != tc.kind || d.Node != tc.node || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("got %s %q: %s\nwant %s %q mentioning %q", d.Kind, d.Node, d.Reason, tc.kind, tc.node, tc.reason)
			}
			for n, part := range tc.reject {
				found := false
				for _, c := range d.Candidates {
					if c.Node == n {
						found = true
						if !strings.Contains(c.Rejected, part) {
							t.Errorf("%s rejected %q, want it to mention %q", n, c.Rejected, part)
						}
					}
				}
				if !found {
					t.Errorf("no candidate row for %s: %+v", n, d.Candidates)
				}
			}
			if d.Kind == Failover {
				if c := d.Candidates[0]; !c.Chosen || c.Node != d.Node {
					t.Errorf("first candidate %+v is not the chosen %s", c, d.Node)
				}
			}
		})
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

func TestDecide_HealthyPrimary(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(in *Input)
		want   []string // "kind node" or "sync-set [names]"
	}{
		{"all well: nothing to do", func(in *Input) {}, nil},
		{"primary suspect is no failover", func(in *Input) { in.Views["pg1"] = view(status.Suspect, nil) }, nil},
		{"old primary back writable is rejoined", func(in *Input) { in.Views["pg3"] = view(status.Healthy, primarySample(90*gib, "")) }, []string{"rejoin pg3"}},
		{"down standby is rejoined", func(in *Input) { in.Views["pg2"] = view(status.Down, nil) }, []string{"rejoin pg2"}},
		{"standby streaming elsewhere is repointed", func(in *Input) { in.Views["pg2"] = view(status.Healthy, standby(100*gib, 1, 6000)) }, []string{"repoint pg2"}},
		{"standby with no receiver is given time to connect", func(in *Input) { in.Views["pg2"] = upFor(standby(100*gib, 1, 0), time.Second) }, nil},
		{"standby with no receiver past the grace is repointed", func(in *Input) { in.Views["pg2"] = upFor(standby(100*gib, 1, 0), 3*time.Second) }, []string{"repoint pg2"}},
		{"standby that never streams is rewound", func(in *Input) { in.Views["pg2"] = upFor(standby(100*gib, 1, 0), 9*time.Second) }, []string{"rejoin pg2"}},
		{"standby that streamed lately is given time", func(in *Input) {
			v := upFor(standby(100*gib, 1, 0), time.Hour)
			v.StreamedAt = in.Now.Add(-time.Second)
			in.Views["pg2"] = v
		}, nil},
		{"sync on picks the most advanced", func(in *Input) { in.SyncMode = meta.SyncOn }, []string{"sync-set [pg2]"}},
		{"sync set recorded and applied: nothing", func(in *Input) {
			in.SyncMode, in.SyncSet = meta.SyncOn, []string{"pg3"}
			in.Views["pg1"] = view(status.Healthy, primarySample(100*gib, `FIRST 1 ("pg3")`))
		}, nil},
		{"sync member lost: replaced", func(in *Input) {
			in.SyncMode, in.SyncSet = meta.SyncOn, []string{"pg3"}
			in.Views["pg1"] = view(status.Healthy, primarySample(100*gib, `FIRST 1 ("pg3")`))
			in.Views["pg3"] = view(status.Down, nil)
		}, []string{"rejoin pg3", "sync-set [pg2]"}},
		{"sync on with no healthy standby degrades", func(in *Input) {
			in.SyncMode, in.SyncSet = meta.SyncOn, []string{"pg3"}
			in.Views["pg2"] = view(status.Suspect, nil)
			in.Views["pg3"] = view(status.Suspect, nil)
		}, []string{"sync-set []"}},
		{"strict keeps the set with no healthy standby", func(in *Input) {
			in.SyncMode, in.SyncSet = meta.SyncStrict, []string{"pg3"}
			in.Views["pg1"] = view(status.Healthy, primarySample(100*gib, `FIRST 1 ("pg3")`))
			in.Views["pg2"] = view(status.Suspect, nil)
			in.Views["pg3"] = view(status.Suspect, nil)
		}, nil},
		{"nofailover standby never sync", func(in *Input) {
			in.SyncMode = meta.SyncOn
			in.Nodes[1].Tags = []string{meta.TagNoFailover}
		}, []string{"sync-set [pg3]"}},
		{"sync off clears a leftover setting", func(in *Input) { in.Views["pg1"] = view(status.Healthy, primarySample(100*gib, `FIRST 1 ("pg2")`)) }, []string{"sync-set []"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := healthy()
			tc.mutate(&in)
			var got []string
			for _, d := range Decide(in) {
				if d.Reason == "" {
					t.Errorf("decision without a reason: %+v", d)
				}
				if d.Kind == SyncSet {
					got = append(got, "sync-set ["+strings.Join(d.SyncNames, ",")+"]")
				} else {
					got = append(got, string(d.Kind)+" "+d.Node)
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("decisions %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSyncStandbyNames(t *testing.T) {
	if got := SyncStandbyNames(nil); got != "" {
		t.Fatal(got)
	}
	if got := SyncStandbyNames([]string{"a", "b"}); got != `FIRST 2 ("a", "b")` {
		t.Fatal(got)
	}
}
