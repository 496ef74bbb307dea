package action

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clustermgr/clustermgr/pkg/decision"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// KindRestart restarts nodes of a shard as a decision.RestartPlan orders:
// the primary in place first (when a parameter standbys must hold at
// least as high decreases), the standbys one at a time, each streaming
// again before the next, then a switchover that restarts the old primary
// as a standby (the operation's From and Target). An operator asks for
// it; a failover does not preempt it (the primary restarting in place is
// not down for the pipeline while it runs; the step fails, and ends the
// operation, if it does not come back).
const KindRestart = "restart"

// RestartSpec is the plan of a restart operation.
type RestartSpec struct {
	Plan decision.RestartPlan `json:"plan"`
}

// restartTimeout bounds one node's restart and its return to service.
const restartTimeout = 2 * time.Minute

func restartPlan(op *meta.Operation) ([]step, func(context.Context, *opContext), error) {
	var spec RestartSpec
	if err := json.Unmarshal(op.Spec, &spec); err != nil {
		return nil, nil, fmt.Errorf("restart spec: %w", err)
	}
	var steps []step
	if spec.Plan.PrimaryFirst {
		steps = append(steps, step{"restart-" + op.From, restartNodeStep(op.From, true)})
	}
	for _, n := range spec.Plan.Standbys {
		steps = append(steps, step{"restart-" + n, restartNodeStep(n, false)})
	}
	if spec.Plan.Switchover {
		steps = append(steps, switchoverSteps()...)
	}
	if len(steps) == 0 {
		return nil, nil, fmt.Errorf("restart plan has no node")
	}
	return steps, nil, nil
}

// restartNodeStep restarts one node through its agent (fast shutdown)
// and waits until it serves again: a primary accepting writes, a standby
// streaming from the primary.
func restartNodeStep(name string, primary bool) func(context.Context, *opContext) (string, error) {
	return func(ctx context.Context, x *opContext) (string, error) {
		n, a, err := x.nodeAgent(name)
		if err != nil {
			return "", err
		}
		ctx, cancel := context.WithTimeout(ctx, restartTimeout)
		defer cancel()
		renew := func() {
			if primary && x.e.RenewLease != nil {
				if err := x.e.RenewLease(ctx, x.op.Cluster, x.op.Shard); err != nil && x.e.Log != nil {
					x.e.Log.Warn("renew the lease of the primary restarting in place", "node", n.Name, "err", err)
				}
			}
		}
		renew()
		if !primary {
			// A standby starts with the primary's settings as the last
			// parameter change it replayed recorded them: one the
			// primary just made (restarted with a lower
			// max_connections) must be replayed before the standby
			// restarts with the same value, or it refuses to start.
			if err := waitReplayed(ctx, x, n); err != nil {
				return "", err
			}
		}
		start := time.Now()
		if _, err := a.Restart(ctx, n.DataDir, x.op.Epoch, "fast"); err != nil {
			return "", fmt.Errorf("restart %s: %w", n.Name, err)
		}
		renew()
		if err := waitServing(ctx, x, n, primary); err != nil {
			return "", err
		}
		renew()
		what := "streams again"
		if primary {
			what = "takes writes again"
		}
		return fmt.Sprintf("restarted %s; it %s after %v", n.Name, what, time.Since(start).Round(time.Millisecond)), nil
	}
}

// waitServing polls n on fresh connections until it is a primary taking
// writes or a standby whose WAL receiver streams.
func waitServing(ctx context.Context, x *opContext, n meta.Node, primary bool) error {
	var last error
	for {
		conn, err := connect(ctx, x.cluster, n)
		if err == nil {
			last = serving(ctx, conn, primary)
			_ = conn.Close(context.Background())
			if last == nil {
				return nil
			}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not serve again within %v: %v", n.Name, restartTimeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func serving(ctx context.Context, conn *pgx.Conn, primary bool) error {
	var inRecovery, streaming bool
	if err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), COALESCE((SELECT status = 'streaming' FROM pg_stat_wal_receiver), false)`).Scan(&inRecovery, &streaming); err != nil {
		return err
	}
	switch {
	case primary && inRecovery:
		return fmt.Errorf("in recovery")
	case !primary && !inRecovery:
		return fmt.Errorf("not in recovery")
	case !primary && !streaming:
		return fmt.Errorf("not streaming yet")
	}
	return nil
}

// waitReplayed waits until standby n has replayed the primary's WAL as of
// now.
func waitReplayed(ctx context.Context, x *opContext, n meta.Node) error {
	p := x.shard.Primary()
	if p == nil {
		return nil
	}
	pc, err := connect(ctx, x.cluster, *p)
	if err != nil {
		return fmt.Errorf("read the primary's position before restarting %s: %w", n.Name, err)
	}
	var target string
	err = pc.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&target)
	_ = pc.Close(context.Background())
	if err != nil {
		return fmt.Errorf("read the primary's position before restarting %s: %w", n.Name, err)
	}
	sc, err := connect(ctx, x.cluster, n)
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	defer sc.Close(context.Background())
	for {
		var done bool
		if err := sc.QueryRow(ctx, "SELECT COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)", target).Scan(&done); err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not replay the primary's WAL up to %s before its restart: %w", n.Name, target, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
