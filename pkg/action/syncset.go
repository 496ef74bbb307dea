package action

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/clustermgr/clustermgr/pkg/decision"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// SetSyncSet moves a shard's synchronous set to want without a moment in
// which a member recorded in Raft could lack an acknowledged commit:
//
//  1. when want adds members, the primary first requires every member of
//     the union of the recorded and wanted sets to confirm each commit, and
//     once they all report as synchronous the union is recorded;
//  2. then want is recorded, and only then does the primary drop the
//     members that left.
//
// So the recorded set only ever names standbys that confirm every commit
// the primary acknowledges from the time they were recorded on.
func SetSyncSet(ctx context.Context, st Store, c meta.Cluster, clusterName, shardName string, primary meta.Node, recorded, want []string) error {
	union := unionOf(recorded, want)
	if len(union) > len(recorded) {
		if err := setSyncNames(ctx, c, primary, union); err != nil {
			return err
		}
		if err := waitSynchronous(ctx, c, primary, union); err != nil {
			return err
		}
		if err := st.Apply(ctx, &meta.SetSyncSet{Cluster: clusterName, Shard: shardName, Nodes: union}); err != nil {
			return err
		}
	}
	if err := st.Apply(ctx, &meta.SetSyncSet{Cluster: clusterName, Shard: shardName, Nodes: want}); err != nil {
		return err
	}
	return setSyncNames(ctx, c, primary, want)
}

func unionOf(a, b []string) []string {
	set := map[string]bool{}
	for _, n := range append(append([]string(nil), a...), b...) {
		set[n] = true
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func setSyncNames(ctx context.Context, c meta.Cluster, primary meta.Node, names []string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return execOn(ctx, c, primary,
		"ALTER SYSTEM SET synchronous_standby_names = "+quoteLiteral(decision.SyncStandbyNames(names)),
		"SELECT pg_reload_conf()")
}

// waitSynchronous waits until every name shows as synchronous in the
// primary's pg_stat_replication.
func waitSynchronous(ctx context.Context, c meta.Cluster, primary meta.Node, names []string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := connect(ctx, c, primary)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for {
		rows, err := conn.Query(ctx, "SELECT application_name FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')")
		if err != nil {
			return fmt.Errorf("read synchronous standbys of %s: %w", primary.Name, err)
		}
		got := map[string]bool{}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err == nil {
				got[n] = true
			}
		}
		rows.Close()
		missing := []string{}
		for _, n := range names {
			if !got[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("standbys [%s] did not become synchronous on %s: %w", strings.Join(missing, ", "), primary.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
