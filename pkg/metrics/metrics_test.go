package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/clustermgr/clustermgr/pkg/metrics"
)

func TestOperationEnded(t *testing.T) {
	m := metrics.New(func() metrics.Snapshot { return metrics.Snapshot{} })
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	m.OperationEnded(metrics.OperationDone{Kind: "switchover", State: "succeeded", Created: t0,
		Steps: map[string]time.Time{"checkpoint": t0.Add(100 * time.Millisecond), "promote": t0.Add(700 * time.Millisecond)}})
	m.OperationEnded(metrics.OperationDone{Kind: "failover", State: "succeeded", Created: t0, Steps: map[string]time.Time{"promote": t0.Add(2 * time.Second)}})
	m.OperationEnded(metrics.OperationDone{Kind: "failover", State: "failed", Created: t0}) // counted, no gap
	m.OperationEnded(metrics.OperationDone{Kind: "rejoin", State: "succeeded", Created: t0})
	want := `
# HELP clustermgr_failover_promotion_seconds Succeeded failovers run here: from the decision to fail over to the new primary's promotion.
# TYPE clustermgr_failover_promotion_seconds histogram
clustermgr_failover_promotion_seconds_bucket{le="0.1"} 0
clustermgr_failover_promotion_seconds_bucket{le="0.25"} 0
clustermgr_failover_promotion_seconds_bucket{le="0.5"} 0
clustermgr_failover_promotion_seconds_bucket{le="0.75"} 0
clustermgr_failover_promotion_seconds_bucket{le="1"} 0
clustermgr_failover_promotion_seconds_bucket{le="1.5"} 0
clustermgr_failover_promotion_seconds_bucket{le="2"} 1
clustermgr_failover_promotion_seconds_bucket{le="3"} 1
clustermgr_failover_promotion_seconds_bucket{le="5"} 1
clustermgr_failover_promotion_seconds_bucket{le="10"} 1
clustermgr_failover_promotion_seconds_bucket{le="30"} 1
clustermgr_failover_promotion_seconds_bucket{le="+Inf"} 1
clustermgr_failover_promotion_seconds_sum 2
clustermgr_failover_promotion_seconds_count 1
# HELP clustermgr_operations_ended_total Operations this replica ran (as leader) to their end, by kind and final state (succeeded, failed, cancelled).
# TYPE clustermgr_operations_ended_total counter
clustermgr_operations_ended_total{kind="failover",state="failed"} 1
clustermgr_operations_ended_total{kind="failover",state="succeeded"} 1
clustermgr_operations_ended_total{kind="rejoin",state="succeeded"} 1
clustermgr_operations_ended_total{kind="switchover",state="succeeded"} 1
# HELP clustermgr_switchover_write_gap_seconds Succeeded switchovers run here: from the old primary's last checkpoint before its stop (it takes writes until then) to the new primary's promotion.
# TYPE clustermgr_switchover_write_gap_seconds histogram
clustermgr_switchover_write_gap_seconds_bucket{le="0.1"} 0
clustermgr_switchover_write_gap_seconds_bucket{le="0.25"} 0
clustermgr_switchover_write_gap_seconds_bucket{le="0.5"} 0
clustermgr_switchover_write_gap_seconds_bucket{le="0.75"} 1
clustermgr_switchover_write_gap_seconds_bucket{le="1"} 1
clustermgr_switchover_write_gap_seconds_bucket{le="1.5"} 1
clustermgr_switchover_write_gap_seconds_bucket{le="2"} 1
clustermgr_switchover_write_gap_seconds_bucket{le="3"} 1
clustermgr_switchover_write_gap_seconds_bucket{le="5"} 1
clustermgr_switchover_write_gap_seconds_bucket{le="10"} 1
clustermgr_switchover_write_gap_seconds_bucket{le="30"} 1
clustermgr_switchover_write_gap_seconds_bucket{le="+Inf"} 1
clustermgr_switchover_write_gap_seconds_sum 0.6
clustermgr_switchover_write_gap_seconds_count 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"clustermgr_failover_promotion_seconds", "clustermgr_operations_ended_total", "clustermgr_switchover_write_gap_seconds"); err != nil {
		t.Fatal(err)
	}
}

// TestFleetText: the fleet's series of a small snapshot, whole, with
// their labels in name order and a label value escaped.
func TestFleetText(t *testing.T) {
	m := metrics.New(func() metrics.Snapshot {
		return metrics.Snapshot{
			Raft: metrics.Raft{State: "Follower", Term: 3, LastIndex: 9, Commit: 8, Applied: 7, Voters: 3, LeaderKnown: true},
			Shards: []metrics.Shard{{Cluster: "app", Name: "s1", State: "degraded", Epoch: 2, Synchronous: true,
				BackupInterval: time.Hour, Nodes: []metrics.Node{
					{Name: "pg1", Role: "primary", Health: "healthy", Timeline: 2},
					{Name: `odd"name`, Role: "standby", Health: "down", LagBytes: 42, LagSeconds: 1.5},
				}}},
			Operations: []metrics.Operation{{Kind: "switchover", State: "succeeded", Count: 2}},
		}
	})
	var out strings.Builder
	if err := m.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	i := strings.Index(text, "# HELP clustermgr_raft_is_leader")
	if i < 0 {
		t.Fatalf("no fleet series in:\n%s", text)
	}
	want := `# HELP clustermgr_raft_is_leader 1 when this replica is the group's leader.
# TYPE clustermgr_raft_is_leader gauge
clustermgr_raft_is_leader 0
# HELP clustermgr_raft_state This replica's Raft state (one-hot).
# TYPE clustermgr_raft_state gauge
clustermgr_raft_state{state="Leader"} 0
clustermgr_raft_state{state="Follower"} 1
clustermgr_raft_state{state="Candidate"} 0
clustermgr_raft_state{state="Shutdown"} 0
# HELP clustermgr_raft_term This replica's current Raft term.
# TYPE clustermgr_raft_term gauge
clustermgr_raft_term 3
# HELP clustermgr_raft_last_index Index of the last entry of this replica's Raft log.
# TYPE clustermgr_raft_last_index gauge
clustermgr_raft_last_index 9
# HELP clustermgr_raft_commit_index Highest Raft index this replica knows committed.
# TYPE clustermgr_raft_commit_index gauge
clustermgr_raft_commit_index 8
# HELP clustermgr_raft_applied_index Highest Raft index this replica has applied.
# TYPE clustermgr_raft_applied_index gauge
clustermgr_raft_applied_index 7
# HELP clustermgr_raft_voters Voters in the group's configuration.
# TYPE clustermgr_raft_voters gauge
clustermgr_raft_voters 3
# HELP clustermgr_raft_leader_known 1 when this replica knows a leader.
# TYPE clustermgr_raft_leader_known gauge
clustermgr_raft_leader_known 1
# HELP clustermgr_shard_state Shard state as this replica sees it (one-hot).
# TYPE clustermgr_shard_state gauge
clustermgr_shard_state{cluster="app",shard="s1",state="healthy"} 0
clustermgr_shard_state{cluster="app",shard="s1",state="degraded"} 1
clustermgr_shard_state{cluster="app",shard="s1",state="no-primary"} 0
clustermgr_shard_state{cluster="app",shard="s1",state="failing-over"} 0
clustermgr_shard_state{cluster="app",shard="s1",state="switching-over"} 0
clustermgr_shard_state{cluster="app",shard="s1",state="paused"} 0
# HELP clustermgr_shard_epoch Shard epoch (grows with every promotion).
# TYPE clustermgr_shard_epoch gauge
clustermgr_shard_epoch{cluster="app",shard="s1"} 2
# HELP clustermgr_shard_sync_standbys Standbys in the shard's synchronous set.
# TYPE clustermgr_shard_sync_standbys gauge
clustermgr_shard_sync_standbys{cluster="app",shard="s1"} 0
# HELP clustermgr_shard_synchronous 1 when the shard's synchronous mode is on or strict.
# TYPE clustermgr_shard_synchronous gauge
clustermgr_shard_synchronous{cluster="app",shard="s1"} 1
# HELP clustermgr_shard_last_backup_timestamp_seconds Time of the shard's newest verified backup (absent: none).
# TYPE clustermgr_shard_last_backup_timestamp_seconds gauge
# HELP clustermgr_shard_backup_schedule_interval_seconds Longest gap between two firings of the shard's backup schedule (absent: no schedule).
# TYPE clustermgr_shard_backup_schedule_interval_seconds gauge
clustermgr_shard_backup_schedule_interval_seconds{cluster="app",shard="s1"} 3600
# HELP clustermgr_node_is_primary 1 when the node is the shard's declared primary.
# TYPE clustermgr_node_is_primary gauge
clustermgr_node_is_primary{cluster="app",node="pg1",shard="s1"} 1
clustermgr_node_is_primary{cluster="app",node="odd\"name",shard="s1"} 0
# HELP clustermgr_node_health Node health as this replica sees it (one-hot).
# TYPE clustermgr_node_health gauge
clustermgr_node_health{cluster="app",health="healthy",node="pg1",shard="s1"} 1
clustermgr_node_health{cluster="app",health="suspect",node="pg1",shard="s1"} 0
clustermgr_node_health{cluster="app",health="down",node="pg1",shard="s1"} 0
clustermgr_node_health{cluster="app",health="unknown",node="pg1",shard="s1"} 0
clustermgr_node_health{cluster="app",health="healthy",node="odd\"name",shard="s1"} 0
clustermgr_node_health{cluster="app",health="suspect",node="odd\"name",shard="s1"} 0
clustermgr_node_health{cluster="app",health="down",node="odd\"name",shard="s1"} 1
clustermgr_node_health{cluster="app",health="unknown",node="odd\"name",shard="s1"} 0
# HELP clustermgr_node_timeline The node's timeline (absent until probed).
# TYPE clustermgr_node_timeline gauge
clustermgr_node_timeline{cluster="app",node="pg1",shard="s1"} 2
# HELP clustermgr_node_replication_lag_bytes Bytes of WAL a standby is behind its primary (0 on the primary).
# TYPE clustermgr_node_replication_lag_bytes gauge
clustermgr_node_replication_lag_bytes{cluster="app",node="pg1",shard="s1"} 0
clustermgr_node_replication_lag_bytes{cluster="app",node="odd\"name",shard="s1"} 42
# HELP clustermgr_node_replication_lag_seconds Replay lag of a standby as its primary measures it (pg_stat_replication.replay_lag; 0 when caught up and idle, and on the primary).
# TYPE clustermgr_node_replication_lag_seconds gauge
clustermgr_node_replication_lag_seconds{cluster="app",node="pg1",shard="s1"} 0
clustermgr_node_replication_lag_seconds{cluster="app",node="odd\"name",shard="s1"} 1.5
# HELP clustermgr_node_streaming 1 when a standby streams from its primary (standbys only).
# TYPE clustermgr_node_streaming gauge
clustermgr_node_streaming{cluster="app",node="odd\"name",shard="s1"} 0
# HELP clustermgr_operations Operations the group's state holds, by kind and state (failovers and switchovers by outcome among them).
# TYPE clustermgr_operations gauge
clustermgr_operations{kind="switchover",state="succeeded"} 2
`
	if got := text[i:]; got != want {
		t.Fatalf("fleet series:\n%s\nwant:\n%s", got, want)
	}
}

// TestProbesSkipped: skipped probes are counted by reason.
func TestProbesSkipped(t *testing.T) {
	m := metrics.New(func() metrics.Snapshot { return metrics.Snapshot{} })
	m.ProbesSkipped("running", 3)
	m.ProbesSkipped("late", 1)
	m.ProbesSkipped("running", 2)
	want := `
# HELP clustermgr_probes_skipped_total Probes this replica's rounds did not make, by reason: running (the node's last probe still runs: a hung or slow server), queued (it still waits for a worker: the replica cannot keep up), queue-full, late (its slot came more than half an interval late: a stalled replica). Each stretches a node's probe period by an interval.
# TYPE clustermgr_probes_skipped_total counter
clustermgr_probes_skipped_total{reason="late"} 1
clustermgr_probes_skipped_total{reason="running"} 5
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "clustermgr_probes_skipped_total"); err != nil {
		t.Fatal(err)
	}
}
