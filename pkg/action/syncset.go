package action

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clustermgr/clustermgr/pkg/decision"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// SetSyncSet moves a shard's synchronous set to want so that the set
// recorded in Raft only ever names standbys that hold every commit the
// primary acknowledged, and the primary never waits for a member that is
// leaving (it may be dead):
//
//  1. members that leave are first dropped from the record, so no failover
//     can pick them once the primary stops waiting for them;
//  2. the primary is given want alone (never old and new together);
//  3. when want adds members, they are recorded only once each reports as
//     synchronous and has flushed the WAL the primary had written when it
//     was given want: from then on they hold every acknowledged commit.
//
// Between 1 and 3 the record names fewer standbys than the primary waits
// for: a failover then has fewer candidates, never a wrong one.
//
// The primary is reached (and found writable) before anything is
// recorded: a primary that just died must not lose its recorded
// synchronous standby, the one a failover needs.
func SetSyncSet(ctx context.Context, st Store, c meta.Cluster, clusterName, shardName string, primary meta.Node, recorded, want []string) error {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	conn, err := connect(cctx, c, primary)
	if err == nil {
		var writable bool
		if err = conn.QueryRow(cctx, "SELECT NOT pg_is_in_recovery()").Scan(&writable); err == nil && !writable {
			err = fmt.Errorf("%s is in recovery", primary.Name)
		}
	}
	cancel()
	if conn != nil {
		defer conn.Close(context.Background())
	}
	if err != nil {
		return fmt.Errorf("reach primary %s before changing its synchronous standbys: %w", primary.Name, err)
	}
	keep, added := splitSet(recorded, want)
	if len(keep) < len(recorded) {
		if err := st.Apply(ctx, &meta.SetSyncSet{Cluster: clusterName, Shard: shardName, Nodes: keep}); err != nil {
			return err
		}
	}
	if err := setSyncNames(ctx, conn, primary, want); err != nil {
		return err
	}
	if len(added) == 0 {
		return nil
	}
	if err := waitSynchronous(ctx, conn, primary, want); err != nil {
		return err
	}
	return st.Apply(ctx, &meta.SetSyncSet{Cluster: clusterName, Shard: shardName, Nodes: want})
}

// splitSet returns the members of recorded that want keeps, and the
// members want adds.
func splitSet(recorded, want []string) (keep, added []string) {
	in := map[string]bool{}
	for _, n := range recorded {
		in[n] = true
	}
	wanted := map[string]bool{}
	for _, n := range want {
		wanted[n] = true
		if !in[n] {
			added = append(added, n)
		}
	}
	keep = []string{}
	for _, n := range recorded {
		if wanted[n] {
			keep = append(keep, n)
		}
	}
	return keep, added
}

func setSyncNames(ctx context.Context, conn *pgx.Conn, primary meta.Node, names []string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, stmt := range []string{"ALTER SYSTEM SET synchronous_standby_names = " + quoteLiteral(decision.SyncStandbyNames(names)), "SELECT pg_reload_conf()"} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s on %s: %w", stmt, primary.Name, err)
		}
	}
	return nil
}

// waitSynchronous waits until every name shows as synchronous in the
// primary's pg_stat_replication and has flushed the WAL written so far.
func waitSynchronous(ctx context.Context, conn *pgx.Conn, primary meta.Node, names []string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var upTo string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&upTo); err != nil {
		return fmt.Errorf("read WAL position of %s: %w", primary.Name, err)
	}
	for {
		rows, err := conn.Query(ctx, "SELECT application_name FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum') AND flush_lsn >= $1::pg_lsn", upTo)
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
