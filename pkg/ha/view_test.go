package ha

import (
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/detector"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// TestDecorateHealth_AsDecorate: the round's lean decoration gives every
// node the health, error and archiving error, and the shard the state,
// that the API's full one gives.
func TestDecorateHealth_AsDecorate(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	primary := &collector.Sample{At: now, CurrentLSN: 100, Timeline: 1,
		Replicas: []collector.Replica{{AppName: "pg2", State: "streaming", SyncState: "async"}}}
	streaming := &collector.Sample{At: now, InRecovery: true, ReceiveLSN: 90, Timeline: 1,
		Receiver: &collector.Receiver{Status: "streaming", SenderHost: "h1", SenderPort: 5432}}
	waiting := &collector.Sample{At: now, InRecovery: true, ReceiveLSN: 90, Timeline: 1,
		Receiver: &collector.Receiver{Status: "waiting"}}
	archiving := *primary
	archiving.Archiver = &collector.Archiver{FailedCount: 3, LastFailedWAL: "000000010000000000000003", LastFailed: now}
	type probe struct {
		node   string
		sample *collector.Sample // nil: the probe failed
	}
	for _, tc := range []struct {
		name   string
		probes []probe
		paused bool
	}{
		{"healthy", []probe{{"pg1", primary}, {"pg2", streaming}, {"pg3", streaming}}, false},
		{"a standby not streaming", []probe{{"pg1", primary}, {"pg2", streaming}, {"pg3", waiting}}, false},
		{"the primary failing", []probe{{"pg1", nil}, {"pg1", nil}, {"pg2", streaming}, {"pg3", streaming}}, false},
		{"archiving failing", []probe{{"pg1", &archiving}, {"pg2", streaming}, {"pg3", streaming}}, false},
		{"a node never probed, paused", []probe{{"pg1", primary}, {"pg2", streaming}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newObserver(2, time.Second, 500*time.Millisecond, func() time.Time { return now }, func() string { return "m1" },
				func(string) {}, func() {}, slog.New(slog.DiscardHandler))
			m := &Manager{obs: o, work: newWorkers()}
			for _, p := range tc.probes {
				r := detector.Result{Key: "c/s/" + p.node, At: now, OK: p.sample != nil, Sample: p.sample, Err: "probe failed"}
				if r.OK {
					r.Err = ""
				}
				o.record(r)
			}
			s := &shardSnap{cluster: meta.Cluster{Name: "c", Settings: meta.ClusterSettings{AutoFailover: !tc.paused}},
				shard: meta.Shard{Name: "s"}, nodes: []meta.Node{{Name: "pg1", Role: meta.RolePrimary}, {Name: "pg2", Role: meta.RoleStandby}, {Name: "pg3", Role: meta.RoleStandby}}}
			shard := func() *api.Shard {
				sh := &api.Shard{Cluster: "c", Name: "s"}
				for _, n := range s.nodes {
					sh.Nodes = append(sh.Nodes, api.Node{Name: n.Name, Role: string(n.Role)})
				}
				return sh
			}
			full, lean := shard(), shard()
			m.decorate(s, full)
			m.decorateHealth(s, lean)
			type health struct{ State, Node, Health, Error, ArchiveError string }
			of := func(sh *api.Shard) (out []health) {
				for _, n := range sh.Nodes {
					out = append(out, health{sh.State, n.Name, n.Status.Health, n.Status.Error, n.Status.ArchiveError})
				}
				return out
			}
			if d := cmp.Diff(of(full), of(lean)); d != "" {
				t.Errorf("(-decorate +decorateHealth):\n%s", d)
			}
		})
	}
}
