package metrics

import (
	"bufio"
	"strconv"
	"strings"
)

// The fleet's series are written straight to the text format: a fleet of
// thousands of nodes has tens of thousands of series, and building each
// as a client_golang metric, sorting and encoding them cost several times
// the whole answer (BenchmarkMetrics). Every family is a gauge; its
// series come in the snapshot's order.

// fleetWriter writes the fleet's families.
type fleetWriter struct {
	w   *bufio.Writer
	buf []byte
	esc *strings.Replacer
}

func newFleetWriter(w *bufio.Writer) *fleetWriter {
	return &fleetWriter{w: w, esc: strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)}
}

// family writes a gauge family's HELP and TYPE lines.
func (f *fleetWriter) family(name, help string) {
	f.w.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " gauge\n")
}

// sample writes one series: labels are name, value pairs, written in the
// order of their names as client_golang writes them (the text is the same
// for a series whichever way it was made).
func (f *fleetWriter) sample(name string, v float64, labels ...string) {
	for i := 2; i+1 < len(labels); i += 2 { // a few pairs: insertion sort
		for j := i; j >= 2 && labels[j] < labels[j-2]; j -= 2 {
			labels[j], labels[j-2] = labels[j-2], labels[j]
			labels[j+1], labels[j-1] = labels[j-1], labels[j+1]
		}
	}
	b := append(f.buf[:0], name...)
	if len(labels) > 0 {
		b = append(b, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, labels[i]...)
			b = append(b, `="`...)
			b = append(b, f.esc.Replace(labels[i+1])...)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = strconv.AppendFloat(b, v, 'g', -1, 64)
	b = append(b, '\n')
	f.buf = b
	f.w.Write(b)
}

// writeFleet writes every family of the snapshot s.
func writeFleet(w *bufio.Writer, s Snapshot) {
	f := newFleetWriter(w)
	one := func(name, help string, v float64) {
		f.family(name, help)
		f.sample(name, v)
	}
	one("clustermgr_raft_is_leader", "1 when this replica is the group's leader.", b2f(s.Raft.State == "Leader"))
	f.family("clustermgr_raft_state", "This replica's Raft state (one-hot).")
	for _, st := range []string{"Leader", "Follower", "Candidate", "Shutdown"} {
		f.sample("clustermgr_raft_state", b2f(s.Raft.State == st), "state", st)
	}
	one("clustermgr_raft_term", "This replica's current Raft term.", float64(s.Raft.Term))
	one("clustermgr_raft_last_index", "Index of the last entry of this replica's Raft log.", float64(s.Raft.LastIndex))
	one("clustermgr_raft_commit_index", "Highest Raft index this replica knows committed.", float64(s.Raft.Commit))
	one("clustermgr_raft_applied_index", "Highest Raft index this replica has applied.", float64(s.Raft.Applied))
	one("clustermgr_raft_voters", "Voters in the group's configuration.", float64(s.Raft.Voters))
	one("clustermgr_raft_leader_known", "1 when this replica knows a leader.", b2f(s.Raft.LeaderKnown))

	shards := func(name, help string, each func(sh *Shard, emit func(v float64, extra ...string))) {
		f.family(name, help)
		for i := range s.Shards {
			sh := &s.Shards[i]
			each(sh, func(v float64, extra ...string) {
				f.sample(name, v, append([]string{"cluster", sh.Cluster, "shard", sh.Name}, extra...)...)
			})
		}
	}
	shards("clustermgr_shard_state", "Shard state as this replica sees it (one-hot).", func(sh *Shard, emit func(float64, ...string)) {
		for _, st := range shardStates() {
			emit(b2f(sh.State == st), "state", st)
		}
	})
	shards("clustermgr_shard_epoch", "Shard epoch (grows with every promotion).", func(sh *Shard, emit func(float64, ...string)) {
		emit(float64(sh.Epoch))
	})
	shards("clustermgr_shard_sync_standbys", "Standbys in the shard's synchronous set.", func(sh *Shard, emit func(float64, ...string)) {
		emit(float64(sh.SyncStandbys))
	})
	shards("clustermgr_shard_synchronous", "1 when the shard's synchronous mode is on or strict.", func(sh *Shard, emit func(float64, ...string)) {
		emit(b2f(sh.Synchronous))
	})
	shards("clustermgr_shard_last_backup_timestamp_seconds", "Time of the shard's newest verified backup (absent: none).", func(sh *Shard, emit func(float64, ...string)) {
		if !sh.LastBackup.IsZero() {
			emit(float64(sh.LastBackup.UnixMilli()) / 1000)
		}
	})
	shards("clustermgr_shard_backup_schedule_interval_seconds", "Longest gap between two firings of the shard's backup schedule (absent: no schedule).", func(sh *Shard, emit func(float64, ...string)) {
		if sh.BackupInterval > 0 {
			emit(sh.BackupInterval.Seconds())
		}
	})

	nodes := func(name, help string, each func(n *Node, emit func(v float64, extra ...string))) {
		f.family(name, help)
		labels := make([]string, 0, 8)
		for i := range s.Shards {
			sh := &s.Shards[i]
			for j := range sh.Nodes {
				n := &sh.Nodes[j]
				each(n, func(v float64, extra ...string) {
					labels = append(append(labels[:0], "cluster", sh.Cluster, "shard", sh.Name, "node", n.Name), extra...)
					f.sample(name, v, labels...)
				})
			}
		}
	}
	nodes("clustermgr_node_is_primary", "1 when the node is the shard's declared primary.", func(n *Node, emit func(float64, ...string)) {
		emit(b2f(n.Role == "primary"))
	})
	nodes("clustermgr_node_health", "Node health as this replica sees it (one-hot).", func(n *Node, emit func(float64, ...string)) {
		for _, h := range nodeHealths() {
			emit(b2f(n.Health == h), "health", h)
		}
	})
	nodes("clustermgr_node_timeline", "The node's timeline (absent until probed).", func(n *Node, emit func(float64, ...string)) {
		if n.Timeline > 0 {
			emit(float64(n.Timeline))
		}
	})
	nodes("clustermgr_node_replication_lag_bytes", "Bytes of WAL a standby is behind its primary (0 on the primary).", func(n *Node, emit func(float64, ...string)) {
		emit(float64(n.LagBytes))
	})
	nodes("clustermgr_node_replication_lag_seconds", "Replay lag of a standby as its primary measures it (pg_stat_replication.replay_lag; 0 when caught up and idle, and on the primary).", func(n *Node, emit func(float64, ...string)) {
		emit(n.LagSeconds)
	})
	nodes("clustermgr_node_streaming", "1 when a standby streams from its primary (standbys only).", func(n *Node, emit func(float64, ...string)) {
		if n.Role != "primary" {
			emit(b2f(n.Streaming))
		}
	})

	f.family("clustermgr_operations", "Operations the group's state holds, by kind and state (failovers and switchovers by outcome among them).")
	for _, op := range s.Operations {
		f.sample("clustermgr_operations", float64(op.Count), "kind", op.Kind, "state", op.State)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
