package action

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/clustermgr/clustermgr/pkg/agent"

	"github.com/clustermgr/clustermgr/pkg/meta"
)

// Operation kinds of backups.
const (
	KindBackup  = "backup"
	KindRestore = "restore"
)

// RestoreSpec is the request of a restore operation.
type RestoreSpec struct {
	Backup     string        `json:"backup"`
	TargetTime string        `json:"target_time,omitempty"`
	Node       ProvisionNode `json:"node"`
	// AsNewShard registers the restored server as the primary of a new
	// shard of that name in the same cluster.
	AsNewShard string `json:"as_new_shard,omitempty"`
}

// restorePlan builds a new server from a backup and the shard's WAL
// archive, up to the target time, and registers it as a new shard when
// asked.
func restorePlan(op *meta.Operation) ([]step, func(context.Context, *opContext), error) {
	var spec RestoreSpec
	if err := json.Unmarshal(op.Spec, &spec); err != nil {
		return nil, nil, fmt.Errorf("decode restore spec: %w", err)
	}
	n := spec.Node
	steps := []step{{"restore " + n.Name, func(ctx context.Context, x *opContext) (string, error) {
		info, err := x.e.Agents(n.Agent).Restore(ctx, agent.Request{DataDir: n.DataDir, Epoch: max(x.shard.Epoch, 1), Port: n.Port, Listen: n.Host, Superuser: x.cluster.Settings.PGUser,
			BackupID: spec.Backup, Archive: ArchiveName(x.op.Cluster, x.op.Shard), TargetTime: spec.TargetTime})
		if err != nil {
			return "", fmt.Errorf("node %s (%s): %w", n.Name, n.Agent, err)
		}
		if info.ReachedAt.IsZero() {
			return fmt.Sprintf("reached LSN %s; no transaction replayed after the backup", info.ReachedLSN), nil
		}
		return fmt.Sprintf("reached LSN %s, last transaction at %s", info.ReachedLSN, info.ReachedAt.Format(time.RFC3339Nano)), nil
	}}}
	if spec.AsNewShard != "" {
		steps = append(steps, step{"register-shard " + spec.AsNewShard, func(ctx context.Context, x *opContext) (string, error) {
			err := x.e.Store.Apply(ctx, &meta.CreateShard{Cluster: x.op.Cluster, Name: spec.AsNewShard, Nodes: []*meta.Node{{
				Name: n.Name, Host: n.Host, Port: n.Port, Role: meta.RolePrimary, Agent: n.Agent, DataDir: n.DataDir}}})
			if err != nil && meta.KindOf(err) != meta.KindConflict {
				return "", err
			}
			return "registered shard " + spec.AsNewShard + " with primary " + n.Name, nil
		}})
	}
	return steps, nil, nil
}

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
