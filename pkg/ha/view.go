package ha

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/status"
)

// ErrNoPrimary is returned by Primary when the shard has no writable
// primary now.
var ErrNoPrimary = errors.New("no writable primary")

// Decorate fills a shard's live state: each node's health and LSNs, the
// shard state, the running operation and the last decision.
func (m *Manager) Decorate(ctx context.Context, sh *api.Shard) {
	s, err := m.findShard(ctx, sh.Cluster, sh.Name)
	if err != nil {
		return
	}
	m.decorate(s, sh)
}

// DecorateAll fills the live state of many shards from one copy of them
// (a shard no longer in the state is left as it is). Only the shards
// asked for are copied, not the whole fleet.
func (m *Manager) DecorateAll(ctx context.Context, shards []api.Shard) {
	want := make(map[string]bool, len(shards))
	for i := range shards {
		want[shardKey(shards[i].Cluster, shards[i].Name)] = true
	}
	snaps := m.snapshotOf(ctx, want)
	for i := range shards {
		if s, ok := snaps[shardKey(shards[i].Cluster, shards[i].Name)]; ok {
			m.decorate(s, &shards[i])
		}
	}
}

// decorate fills sh from this replica's views of the shard s.
func (m *Manager) decorate(s *shardSnap, sh *api.Shard) { m.fill(s, sh, true) }

// decorateHealth fills only what the shard's state is made of: each
// node's health, error and archiving error, and the state. A leader's
// round reads no more (its transitions), for every shard each interval.
func (m *Manager) decorateHealth(s *shardSnap, sh *api.Shard) { m.fill(s, sh, false) }

// fill is decorate when full is set, decorateHealth when not.
func (m *Manager) fill(s *shardSnap, sh *api.Shard, full bool) {
	var primaryLSN uint64
	var syncState map[string]string
	var replayLag map[string]time.Duration
	if p := s.primary(); p != nil {
		if nv, ok := m.obs.view(nodeKey(s.cluster.Name, s.shard.Name, p.Name)); ok && nv.sample != nil {
			primaryLSN = uint64(nv.sample.CurrentLSN)
			if full {
				syncState, replayLag = map[string]string{}, map[string]time.Duration{}
				for _, r := range nv.sample.Replicas {
					syncState[r.AppName] = r.SyncState
					replayLag[r.AppName] = r.ReplayLag
				}
			}
		}
	}
	in := status.ShardInput{Paused: !s.cluster.Settings.AutoFailover}
	if s.op != nil {
		in.Operation = s.op.Kind
		sh.Operation = s.op.ID
	}
	for i := range sh.Nodes {
		n := &sh.Nodes[i]
		nv, ok := m.obs.view(nodeKey(sh.Cluster, sh.Name, n.Name))
		st := &api.NodeStatus{Health: string(status.Unknown)}
		streaming := false
		if ok {
			st.Health = string(nv.health)
			st.LastProbe, st.Error = nv.last.At, nv.last.Err
			if smp := nv.sample; smp != nil {
				st.InRecovery, st.Timeline, st.TimelineFrom = smp.InRecovery, smp.Timeline, smp.TimelineFrom
				if a := smp.Archiver; a.Failing() {
					st.ArchiveError = fmt.Sprintf("archiving %s failed %d time(s), last at %s; last success %s",
						a.LastFailedWAL, a.FailedCount, a.LastFailed.UTC().Format(time.RFC3339), a.LastArchived.UTC().Format(time.RFC3339))
				}
				if smp.InRecovery && primaryLSN > 0 {
					st.LagBytes = max(int64(primaryLSN)-int64(smp.LSN()), 0)
				}
				r := smp.Receiver
				streaming = r != nil && r.Status == "streaming"
				if full {
					st.CurrentLSN, st.ReceiveLSN, st.ReplayLSN = lsnString(smp.CurrentLSN), lsnString(smp.ReceiveLSN), lsnString(smp.ReplayLSN)
					st.Connections, st.MaxConns = smp.Connections, smp.MaxConnections
					st.PendingRestart = append([]string(nil), smp.PendingRestart...)
					if streaming {
						st.StreamingFrom = fmt.Sprintf("%s:%d", r.SenderHost, r.SenderPort)
					}
				}
			}
		}
		st.SyncState = syncState[n.Name]
		st.LagSeconds = replayLag[n.Name].Seconds()
		n.Status = st
		if n.Role == string(meta.RolePrimary) {
			in.PrimaryHealth = status.Health(st.Health)
			in.ArchiveFailing = st.ArchiveError != ""
		} else {
			in.Standbys++
			// A standby counts as healthy only while it streams (when
			// there is a primary to stream from).
			if st.Health == string(status.Healthy) && (streaming || primaryLSN == 0) {
				in.HealthyStandbys++
			}
		}
	}
	sh.State = string(status.Shard(in))
	if d, ok := m.work.decision(shardKey(sh.Cluster, sh.Name)); ok {
		sh.LastDecision = &d
	}
}
