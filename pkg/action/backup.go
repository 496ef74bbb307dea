package action

import (
	"context"
	"fmt"

	"github.com/clustermgr/clustermgr/pkg/meta"
)

// KindBackup is the operation kind of a base backup.
const KindBackup = "backup"

// backupPlan takes a verified base backup of the target node through its
// agent and records it.
func backupPlan(op *meta.Operation) ([]step, func(context.Context, *opContext), error) {
	return []step{{"backup " + op.Target, func(ctx context.Context, x *opContext) (string, error) {
		n, err := x.node(x.op.Target)
		if err != nil {
			return "", err
		}
		if n.Agent == "" {
			return "", fmt.Errorf("node %s has no agent", n.Name)
		}
		info, err := x.e.Agents(n.Agent).Backup(ctx, x.op.ID, ConnInfo(x.cluster, n, "clustermgr_backup"), x.shard.Epoch)
		if err != nil {
			return "", fmt.Errorf("backup of %s (%s): %w", n.Name, n.Agent, err)
		}
		b := meta.Backup{ID: x.op.ID, Cluster: x.op.Cluster, Shard: x.op.Shard, Node: n.Name, Agent: n.Agent, Path: info.Path,
			SizeBytes: info.SizeBytes, StartLSN: info.StartLSN, StopLSN: info.StopLSN, Timeline: info.Timeline, Duration: info.Duration, Verified: info.Verified}
		if err := x.e.Store.Apply(ctx, &meta.PutBackup{Backup: b}); err != nil {
			return "", err
		}
		return fmt.Sprintf("%d bytes from %s, WAL %s-%s, verified", info.SizeBytes, n.Name, info.StartLSN, info.StopLSN), nil
	}}}, nil, nil
}
