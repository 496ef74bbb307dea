package action

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clustermgr/clustermgr/pkg/decision"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// KindSyncSet and KindRepoint are the leader's routine changes to a
// healthy shard. They never hold up a failover or a requested operation:
// those preempt them (Preemptible).
const (
	KindSyncSet = "sync-set"
	KindRepoint = "repoint"
)

// Preemptible reports whether an operation of kind may be stopped between
// or inside its steps for a failover or a requested operation: what it
// leaves half done is safe (see syncSetPlan) and the next decision redoes
// it if still needed.
func Preemptible(kind string) bool {
	return kind == KindSyncSet || kind == KindRepoint || kind == KindConfigure
}

// SyncSetSpec is the request of a sync-set operation: the synchronous
// standbys the primary (the operation's From) must wait for.
type SyncSetSpec struct {
	Want []string `json:"want"`
}

// syncSetPlan moves a shard's synchronous set to want so that the set
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
// for: a failover then has fewer candidates, never a wrong one, so the
// operation may stop anywhere.
//
// The primary is reached (and found writable) before anything is
// recorded: a primary that just died must not lose its recorded
// synchronous standby, the one a failover needs.
func syncSetPlan() []step {
	return []step{
		{"drop-leaving", dropLeaving},
		{"configure-primary", configurePrimary},
		{"record-joining", recordJoining},
	}
}

func syncSetSpec(x *opContext) (SyncSetSpec, meta.Node, error) {
	var spec SyncSetSpec
	if err := json.Unmarshal(x.op.Spec, &spec); err != nil {
		return spec, meta.Node{}, fmt.Errorf("decode sync-set spec: %w", err)
	}
	p, err := x.samePrimary()
	return spec, p, err
}

// samePrimary is the shard's primary when it is still the one the
// operation was decided under (From, at the operation's epoch).
func (x *opContext) samePrimary() (meta.Node, error) {
	p := x.shard.Primary()
	if p == nil || p.Name != x.op.From || x.shard.Epoch != x.op.Epoch {
		return meta.Node{}, fmt.Errorf("the primary is no longer %s at epoch %d", x.op.From, x.op.Epoch)
	}
	return *p, nil
}

// reachPrimary connects to the primary within a second and checks that it
// is writable.
func reachPrimary(ctx context.Context, x *opContext, p meta.Node) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := connect(cctx, x.cluster, p)
	if err == nil {
		var writable bool
		if err = conn.QueryRow(cctx, "SELECT NOT pg_is_in_recovery()").Scan(&writable); err == nil && !writable {
			err = fmt.Errorf("%s is in recovery", p.Name)
		}
		if err != nil {
			conn.Close(context.Background())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reach primary %s before changing its synchronous standbys: %w", p.Name, err)
	}
	return conn, nil
}

func dropLeaving(ctx context.Context, x *opContext) (string, error) {
	spec, p, err := syncSetSpec(x)
	if err != nil {
		return "", err
	}
	conn, err := reachPrimary(ctx, x, p)
	if err != nil {
		return "", err
	}
	conn.Close(context.Background())
	keep, _ := splitSet(x.shard.SyncSet, spec.Want)
	if len(keep) == len(x.shard.SyncSet) {
		return "no member leaves", nil
	}
	if err := x.e.Store.Apply(ctx, &meta.SetSyncSet{Cluster: x.op.Cluster, Shard: x.op.Shard, Nodes: keep}); err != nil {
		return "", err
	}
	return "recorded [" + strings.Join(keep, ", ") + "]", nil
}

func configurePrimary(ctx context.Context, x *opContext) (string, error) {
	spec, p, err := syncSetSpec(x)
	if err != nil {
		return "", err
	}
	conn, err := reachPrimary(ctx, x, p)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if err := setSyncNames(ctx, conn, p, spec.Want); err != nil {
		return "", err
	}
	return fmt.Sprintf("synchronous_standby_names = '%s' on %s", decision.SyncStandbyNames(spec.Want), p.Name), nil
}

func recordJoining(ctx context.Context, x *opContext) (string, error) {
	spec, p, err := syncSetSpec(x)
	if err != nil {
		return "", err
	}
	if _, added := splitSet(x.shard.SyncSet, spec.Want); len(added) == 0 {
		return "no member joins", nil
	}
	conn, err := reachPrimary(ctx, x, p)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if err := waitSynchronous(ctx, conn, p, spec.Want); err != nil {
		return "", err
	}
	if err := x.e.Store.Apply(ctx, &meta.SetSyncSet{Cluster: x.op.Cluster, Shard: x.op.Shard, Nodes: spec.Want}); err != nil {
		return "", err
	}
	return "recorded [" + strings.Join(spec.Want, ", ") + "]: synchronous and flushed", nil
}

// RepointSpec is the request of a repoint operation: the standbys to
// point at the primary (the operation's From).
type RepointSpec struct {
	Nodes []string `json:"nodes"`
}

func repointPlan() []step {
	return []step{{"repoint-standbys", repointNamed}}
}

// repointNamed sets primary_conninfo of each named standby to the primary
// and reloads it.
func repointNamed(ctx context.Context, x *opContext) (string, error) {
	var spec RepointSpec
	if err := json.Unmarshal(x.op.Spec, &spec); err != nil {
		return "", fmt.Errorf("decode repoint spec: %w", err)
	}
	p, err := x.samePrimary()
	if err != nil {
		return "", err
	}
	// Each standby on its own: one that hangs does not keep the others
	// from their primary.
	var done []string
	var errs []error
	for _, name := range spec.Nodes {
		n, err := x.node(name)
		if err == nil {
			err = Repoint(ctx, x.cluster, p, n)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		done = append(done, name)
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("[%s] point at %s, the others failed: %w", strings.Join(done, ", "), p.Name, errors.Join(errs...))
	}
	return "[" + strings.Join(done, ", ") + "] point at " + p.Name, nil
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
