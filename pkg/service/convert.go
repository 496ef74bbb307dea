package service

import (
	"maps"
	"sort"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

func toAPICluster(c *meta.Cluster) api.Cluster {
	out := api.Cluster{
		Name:            c.Name,
		PGUser:          c.Settings.PGUser,
		PGPasswordSet:   c.Settings.PGPassword != "",
		ReplicationUser: c.Settings.ReplicationUser,
		AutoFailover:    c.Settings.AutoFailover,
		Shards:          make([]api.Shard, 0, len(c.Shards)),
		CreatedAt:       c.CreatedAt,
		UpdatedAt:       c.UpdatedAt,
	}
	for _, name := range sortedKeys(c.Shards) {
		out.Shards = append(out.Shards, toAPIShard(c.Name, c.Shards[name]))
	}
	return out
}

func toAPIShard(cluster string, sh *meta.Shard) api.Shard {
	out := api.Shard{Cluster: cluster, Name: sh.Name, Epoch: sh.Epoch, Nodes: make([]api.Node, 0, len(sh.Nodes)), CreatedAt: sh.CreatedAt,
		Settings: api.ShardSettings{Synchronous: sh.SyncMode(), MaxLagOnFailover: sh.MaxLag(), BackupSchedule: sh.Settings.BackupSchedule,
			BackupRetention: sh.Settings.BackupRetention, ReplicationSlots: sh.Settings.ReplicationSlots, Parameters: maps.Clone(sh.Settings.Parameters)},
		SyncSet: append([]string(nil), sh.SyncSet...), ParamsVersion: sh.ParamsVersion}
	for _, name := range sortedKeys(sh.Nodes) {
		n := sh.Nodes[name]
		if n.Role == meta.RolePrimary {
			out.Primary = n.Name
		}
		out.Nodes = append(out.Nodes, toAPINode(n))
	}
	return out
}

func toAPINode(n *meta.Node) api.Node {
	return api.Node{
		Name: n.Name, Host: n.Host, Port: n.Port, Role: string(n.Role), Agent: n.Agent, DataDir: n.DataDir,
		Tags: append([]string(nil), n.Tags...), Priority: n.Priority, AddedAt: n.AddedAt, ParamsApplied: n.ParamsApplied,
		Maintenance: n.Maintenance, MaintenanceReason: n.MaintenanceReason,
	}
}

func fromAPINode(n api.Node) *meta.Node {
	return &meta.Node{
		Name: n.Name, Host: n.Host, Port: n.Port, Role: meta.Role(n.Role), Agent: n.Agent, DataDir: n.DataDir,
		Tags: append([]string(nil), n.Tags...), Priority: n.Priority,
	}
}

func toAPIOperation(o *meta.Operation) api.Operation {
	out := api.Operation{ID: o.ID, Kind: o.Kind, Cluster: o.Cluster, Shard: o.Shard, Target: o.Target, From: o.From, Epoch: o.Epoch,
		Reason: o.Reason, State: o.State, Progress: o.Progress, CancelRequested: o.CancelRequested, Error: o.Error,
		Steps: make([]api.OperationStep, 0, len(o.Steps)), CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
	for _, st := range o.Steps {
		out.Steps = append(out.Steps, api.OperationStep(st))
	}
	return out
}

func toAPIManager(info meta.ManagerInfo) api.Manager {
	out := api.Manager{
		NodeID: info.NodeID, State: info.State, LeaderID: info.LeaderID, LeaderAPIAddr: info.LeaderAPIAddr,
		Term: info.Term, CommitIndex: info.CommitIndex, AppliedIndex: info.AppliedIndex, LastIndex: info.LastIndex,
		AppliedBytes: info.AppliedBytes,
		Members:      make([]api.Member, 0, len(info.Members)),
	}
	if sn := info.LastSnapshot; !sn.At.IsZero() {
		out.LastSnapshot = &api.Snapshot{At: sn.At, Bytes: sn.Bytes,
			EncodeMs: float64(sn.Encode.Microseconds()) / 1000, PersistMs: float64(sn.Persist.Microseconds()) / 1000}
	}
	for _, m := range info.Members {
		out.Members = append(out.Members, api.Member(m))
	}
	sort.Slice(out.Members, func(i, j int) bool { return out.Members[i].ID < out.Members[j].ID })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
