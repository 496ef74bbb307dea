package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// fleet is the collector of the fleet's picture, read at each scrape.
type fleet struct {
	snap func() Snapshot
	d    fleetDescs
}

type fleetDescs struct {
	raftLeader, raftState, raftTerm, raftLast, raftCommit, raftApplied, raftVoters, leaderKnown *prometheus.Desc
	shardState, shardEpoch, shardSync, shardSynchronous, shardLastBackup, shardBackupInterval   *prometheus.Desc
	nodePrimary, nodeHealth, nodeTimeline, nodeLag, nodeStream, nodeProbe                       *prometheus.Desc
	operations                                                                                  *prometheus.Desc
}

func newFleet(snap func() Snapshot) *fleet {
	node, shard := []string{"cluster", "shard", "node"}, []string{"cluster", "shard"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &fleet{snap: snap, d: fleetDescs{
		raftLeader:          d("clustermgr_raft_is_leader", "1 when this replica is the group's leader."),
		raftState:           d("clustermgr_raft_state", "This replica's Raft state (one-hot).", "state"),
		raftTerm:            d("clustermgr_raft_term", "This replica's current Raft term."),
		raftLast:            d("clustermgr_raft_last_index", "Index of the last entry of this replica's Raft log."),
		raftCommit:          d("clustermgr_raft_commit_index", "Highest Raft index this replica knows committed."),
		raftApplied:         d("clustermgr_raft_applied_index", "Highest Raft index this replica has applied."),
		raftVoters:          d("clustermgr_raft_voters", "Voters in the group's configuration."),
		leaderKnown:         d("clustermgr_raft_leader_known", "1 when this replica knows a leader."),
		shardState:          d("clustermgr_shard_state", "Shard state as this replica sees it (one-hot).", append(shard, "state")...),
		shardEpoch:          d("clustermgr_shard_epoch", "Shard epoch (grows with every promotion).", shard...),
		shardSync:           d("clustermgr_shard_sync_standbys", "Standbys in the shard's synchronous set.", shard...),
		shardSynchronous:    d("clustermgr_shard_synchronous", "1 when the shard's synchronous mode is on or strict.", shard...),
		shardLastBackup:     d("clustermgr_shard_last_backup_timestamp_seconds", "Time of the shard's newest verified backup (absent: none).", shard...),
		shardBackupInterval: d("clustermgr_shard_backup_schedule_interval_seconds", "Longest gap between two firings of the shard's backup schedule (absent: no schedule).", shard...),
		nodePrimary:         d("clustermgr_node_is_primary", "1 when the node is the shard's declared primary.", node...),
		nodeHealth:          d("clustermgr_node_health", "Node health as this replica sees it (one-hot).", append(node, "health")...),
		nodeTimeline:        d("clustermgr_node_timeline", "The node's timeline (absent until probed).", node...),
		nodeLag:             d("clustermgr_node_replication_lag_bytes", "Bytes of WAL a standby is behind its primary (0 on the primary).", node...),
		nodeStream:          d("clustermgr_node_streaming", "1 when a standby streams from its primary (standbys only).", node...),
		nodeProbe:           d("clustermgr_node_last_probe_seconds", "Duration of this replica's last probe of the node.", node...),
		operations:          d("clustermgr_operations", "Operations the group's state holds, by kind and state (failovers and switchovers by outcome among them).", "kind", "state"),
	}}
}

func (f *fleet) Describe(ch chan<- *prometheus.Desc) {
	d := f.d
	for _, x := range []*prometheus.Desc{d.raftLeader, d.raftState, d.raftTerm, d.raftLast, d.raftCommit, d.raftApplied, d.raftVoters,
		d.leaderKnown, d.shardState, d.shardEpoch, d.shardSync, d.shardSynchronous, d.shardLastBackup, d.shardBackupInterval, d.nodePrimary, d.nodeHealth, d.nodeTimeline, d.nodeLag,
		d.nodeStream, d.nodeProbe, d.operations} {
		ch <- x
	}
}

func (f *fleet) Collect(ch chan<- prometheus.Metric) {
	s, d := f.snap(), f.d
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(d.raftLeader, b2f(s.Raft.State == "Leader"))
	for _, st := range []string{"Leader", "Follower", "Candidate", "Shutdown"} {
		gauge(d.raftState, b2f(s.Raft.State == st), st)
	}
	gauge(d.raftTerm, float64(s.Raft.Term))
	gauge(d.raftLast, float64(s.Raft.LastIndex))
	gauge(d.raftCommit, float64(s.Raft.Commit))
	gauge(d.raftApplied, float64(s.Raft.Applied))
	gauge(d.raftVoters, float64(s.Raft.Voters))
	gauge(d.leaderKnown, b2f(s.Raft.LeaderKnown))
	for _, sh := range s.Shards {
		for _, st := range shardStates() {
			gauge(d.shardState, b2f(sh.State == st), sh.Cluster, sh.Name, st)
		}
		gauge(d.shardEpoch, float64(sh.Epoch), sh.Cluster, sh.Name)
		gauge(d.shardSync, float64(sh.SyncStandbys), sh.Cluster, sh.Name)
		gauge(d.shardSynchronous, b2f(sh.Synchronous), sh.Cluster, sh.Name)
		if !sh.LastBackup.IsZero() {
			gauge(d.shardLastBackup, float64(sh.LastBackup.UnixMilli())/1000, sh.Cluster, sh.Name)
		}
		if sh.BackupInterval > 0 {
			gauge(d.shardBackupInterval, sh.BackupInterval.Seconds(), sh.Cluster, sh.Name)
		}
		for _, n := range sh.Nodes {
			l := []string{sh.Cluster, sh.Name, n.Name}
			gauge(d.nodePrimary, b2f(n.Role == "primary"), l...)
			for _, h := range nodeHealths() {
				gauge(d.nodeHealth, b2f(n.Health == h), append(l, h)...)
			}
			if n.Timeline > 0 {
				gauge(d.nodeTimeline, float64(n.Timeline), l...)
			}
			gauge(d.nodeLag, float64(n.LagBytes), l...)
			if n.Role != "primary" {
				gauge(d.nodeStream, b2f(n.Streaming), l...)
			}
			if n.ProbeSeconds > 0 {
				gauge(d.nodeProbe, n.ProbeSeconds, l...)
			}
		}
	}
	for _, op := range s.Operations {
		gauge(d.operations, float64(op.Count), op.Kind, op.State)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
