package client

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
)

func esc(s string) string { return url.PathEscape(s) }

func forceQuery(force bool) string {
	if force {
		return "?force=true"
	}
	return ""
}

// Health returns the liveness of the first replica that answers.
func (c *Client) Health(ctx context.Context) (api.Health, error) {
	var out api.Health
	return out, c.do(ctx, "GET", "/v1/health", nil, &out)
}

// Manager returns a replica's view of the group.
func (c *Client) Manager(ctx context.Context) (api.Manager, error) {
	var out api.Manager
	return out, c.do(ctx, "GET", "/v1/manager", nil, &out)
}

// JoinMember adds a replica to the group.
func (c *Client) JoinMember(ctx context.Context, req api.JoinRequest) (api.Member, error) {
	var out api.Member
	return out, c.do(ctx, "POST", "/v1/manager/members", req, &out)
}

// RemoveMember removes a replica from the group.
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	return c.do(ctx, "DELETE", "/v1/manager/members/"+esc(id), nil, nil)
}

// TransferLeadership hands leadership to member to ("" for any).
func (c *Client) TransferLeadership(ctx context.Context, to string) (api.TransferResult, error) {
	var out api.TransferResult
	return out, c.do(ctx, "POST", "/v1/manager/transfer-leadership", api.TransferRequest{To: to}, &out)
}

// ListClusters lists every cluster.
func (c *Client) ListClusters(ctx context.Context) ([]api.Cluster, error) {
	var out api.ClusterList
	return out.Clusters, c.do(ctx, "GET", "/v1/clusters", nil, &out)
}

// CreateCluster registers a cluster.
func (c *Client) CreateCluster(ctx context.Context, req api.ClusterCreate) (api.Cluster, error) {
	var out api.Cluster
	return out, c.do(ctx, "POST", "/v1/clusters", req, &out)
}

// GetCluster returns one cluster.
func (c *Client) GetCluster(ctx context.Context, name string) (api.Cluster, error) {
	var out api.Cluster
	return out, c.do(ctx, "GET", "/v1/clusters/"+esc(name), nil, &out)
}

// PatchCluster changes a cluster's settings.
func (c *Client) PatchCluster(ctx context.Context, name string, req api.ClusterPatch) (api.Cluster, error) {
	var out api.Cluster
	return out, c.do(ctx, "PATCH", "/v1/clusters/"+esc(name), req, &out)
}

// DeleteCluster removes a cluster; with force also its shards.
func (c *Client) DeleteCluster(ctx context.Context, name string, force bool) error {
	return c.do(ctx, "DELETE", "/v1/clusters/"+esc(name)+forceQuery(force), nil, nil)
}

// ListShards lists a cluster's shards.
func (c *Client) ListShards(ctx context.Context, cluster string) ([]api.Shard, error) {
	var out api.ShardList
	return out.Shards, c.do(ctx, "GET", "/v1/clusters/"+esc(cluster)+"/shards", nil, &out)
}

// CreateShard registers a shard with its nodes.
func (c *Client) CreateShard(ctx context.Context, cluster string, req api.ShardCreate) (api.Shard, error) {
	var out api.Shard
	return out, c.do(ctx, "POST", "/v1/clusters/"+esc(cluster)+"/shards", req, &out)
}

// GetShard returns one shard.
func (c *Client) GetShard(ctx context.Context, cluster, shard string) (api.Shard, error) {
	var out api.Shard
	return out, c.do(ctx, "GET", "/v1/clusters/"+esc(cluster)+"/shards/"+esc(shard), nil, &out)
}

// DeleteShard unregisters a shard.
func (c *Client) DeleteShard(ctx context.Context, cluster, shard string) error {
	return c.do(ctx, "DELETE", "/v1/clusters/"+esc(cluster)+"/shards/"+esc(shard), nil, nil)
}

// AddNode registers a node in a shard and returns the shard.
func (c *Client) AddNode(ctx context.Context, cluster, shard string, n api.Node) (api.Shard, error) {
	var out api.Shard
	return out, c.do(ctx, "POST", "/v1/clusters/"+esc(cluster)+"/shards/"+esc(shard)+"/nodes", n, &out)
}

// RemoveNode unregisters a node; the primary only with force.
func (c *Client) RemoveNode(ctx context.Context, cluster, shard, node string, force bool) error {
	_, err := c.RemoveNodeOperation(ctx, cluster, shard, node, force, false)
	return err
}

// RemoveNodeOperation removes a node. A standby with an agent is removed by
// an operation (its reference is returned); otherwise the node is
// unregistered at once and the reference is empty.
func (c *Client) RemoveNodeOperation(ctx context.Context, cluster, shard, node string, force, purge bool) (api.OperationRef, error) {
	q := url.Values{}
	if force {
		q.Set("force", "true")
	}
	if purge {
		q.Set("purge", "true")
	}
	path := "/v1/clusters/" + esc(cluster) + "/shards/" + esc(shard) + "/nodes/" + esc(node)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out api.OperationRef
	return out, c.do(ctx, "DELETE", path, nil, &out)
}

// AddNodeOperation provisions a node (req.Provision) and returns the
// operation that does it.
func (c *Client) AddNodeOperation(ctx context.Context, cluster, shard string, req api.NodeAdd) (api.OperationRef, error) {
	var out api.OperationRef
	return out, c.do(ctx, "POST", "/v1/clusters/"+esc(cluster)+"/shards/"+esc(shard)+"/nodes", req, &out)
}

// EventFilter selects events.
type EventFilter struct {
	Cluster string
	Since   string // event id or RFC 3339 time
	Limit   int
}

// Events returns events, oldest first.
func (c *Client) Events(ctx context.Context, f EventFilter) ([]api.Event, error) {
	q := url.Values{}
	if f.Cluster != "" {
		q.Set("cluster", f.Cluster)
	}
	if f.Since != "" {
		q.Set("since", f.Since)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	path := "/v1/events"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out api.EventList
	return out.Events, c.do(ctx, "GET", path, nil, &out)
}

// Operations lists operations.
func (c *Client) Operations(ctx context.Context) ([]api.Operation, error) {
	var out api.OperationList
	return out.Operations, c.do(ctx, "GET", "/v1/operations", nil, &out)
}

// Operation returns one operation.
func (c *Client) Operation(ctx context.Context, id string) (api.Operation, error) {
	var out api.Operation
	return out, c.do(ctx, "GET", "/v1/operations/"+esc(id), nil, &out)
}

func shardPath(cluster, shard string) string {
	return "/v1/clusters/" + esc(cluster) + "/shards/" + esc(shard)
}

// PatchShard changes a shard's HA settings.
func (c *Client) PatchShard(ctx context.Context, cluster, shard string, req api.ShardPatch) (api.Shard, error) {
	var out api.Shard
	return out, c.do(ctx, "PATCH", shardPath(cluster, shard), req, &out)
}

// Switchover starts a switchover (to "" lets the leader choose).
func (c *Client) Switchover(ctx context.Context, cluster, shard, to string) (api.OperationRef, error) {
	var out api.OperationRef
	return out, c.do(ctx, "POST", shardPath(cluster, shard)+"/switchover", api.SwitchoverRequest{To: to}, &out)
}

// Failover starts a manual failover to node to; force accepts a target
// that may lack acknowledged commits.
func (c *Client) Failover(ctx context.Context, cluster, shard, to string, force, oldPrimaryGone bool) (api.OperationRef, error) {
	var out api.OperationRef
	return out, c.do(ctx, "POST", shardPath(cluster, shard)+"/failover", api.SwitchoverRequest{To: to, Force: force, OldPrimaryGone: oldPrimaryGone}, &out)
}

// Rejoin starts a rejoin of a standby.
func (c *Client) Rejoin(ctx context.Context, cluster, shard, node string) (api.OperationRef, error) {
	var out api.OperationRef
	return out, c.do(ctx, "POST", shardPath(cluster, shard)+"/nodes/"+esc(node)+"/rejoin", nil, &out)
}

// Primary returns the shard's writable primary.
func (c *Client) Primary(ctx context.Context, cluster, shard string) (api.Primary, error) {
	var out api.Primary
	return out, c.do(ctx, "GET", shardPath(cluster, shard)+"/primary", nil, &out)
}

// Restart starts a restart of a shard's nodes (see api.RestartRequest).
func (c *Client) Restart(ctx context.Context, cluster, shard string, req api.RestartRequest) (api.OperationRef, error) {
	var out api.OperationRef
	return out, c.do(ctx, "POST", shardPath(cluster, shard)+"/restart", req, &out)
}

// Maintenance puts a node in maintenance (on) or takes it out.
func (c *Client) Maintenance(ctx context.Context, cluster, shard, node string, on bool, reason string) (api.Shard, error) {
	var out api.Shard
	path := shardPath(cluster, shard) + "/nodes/" + esc(node) + "/maintenance"
	if !on {
		return out, c.do(ctx, "DELETE", path, nil, &out)
	}
	return out, c.do(ctx, "POST", path, api.MaintenanceRequest{Reason: reason}, &out)
}

// ScheduleSwitchover schedules a switchover of a shard at a time.
func (c *Client) ScheduleSwitchover(ctx context.Context, cluster, shard, to string, at time.Time) (api.Schedule, error) {
	var out api.Schedule
	return out, c.do(ctx, "POST", shardPath(cluster, shard)+"/switchover", api.SwitchoverRequest{To: to, At: at}, &out)
}

// Schedules lists the scheduled switchovers (one cluster's when cluster
// is set).
func (c *Client) Schedules(ctx context.Context, cluster string) ([]api.Schedule, error) {
	var out api.ScheduleList
	path := "/v1/schedules"
	if cluster != "" {
		path += "?cluster=" + url.QueryEscape(cluster)
	}
	return out.Schedules, c.do(ctx, "GET", path, nil, &out)
}

// CancelSchedule cancels a scheduled switchover.
func (c *Client) CancelSchedule(ctx context.Context, id string) (api.Schedule, error) {
	var out api.Schedule
	return out, c.do(ctx, "DELETE", "/v1/schedules/"+esc(id), nil, &out)
}

// Webhooks lists the webhook subscriptions.
func (c *Client) Webhooks(ctx context.Context) ([]api.Webhook, error) {
	var out api.WebhookList
	return out.Webhooks, c.do(ctx, "GET", "/v1/webhooks", nil, &out)
}

// PutWebhook creates or replaces a subscription.
func (c *Client) PutWebhook(ctx context.Context, req api.WebhookRequest) (api.Webhook, error) {
	var out api.Webhook
	return out, c.do(ctx, "POST", "/v1/webhooks", req, &out)
}

// DeleteWebhook removes a subscription.
func (c *Client) DeleteWebhook(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/v1/webhooks/"+esc(name), nil, nil)
}

// Deliveries lists a subscription's last attempts.
func (c *Client) Deliveries(ctx context.Context, name string) ([]api.Delivery, error) {
	var out api.DeliveryList
	return out.Deliveries, c.do(ctx, "GET", "/v1/webhooks/"+esc(name)+"/deliveries", nil, &out)
}

// Connection returns a shard's libpq connection strings.
func (c *Client) Connection(ctx context.Context, cluster, shard string) (api.Connection, error) {
	var out api.Connection
	return out, c.do(ctx, "GET", shardPath(cluster, shard)+"/connection", nil, &out)
}

// CreateShardOperation provisions a shard (req.Provision) and returns the
// operation that does it.
func (c *Client) CreateShardOperation(ctx context.Context, cluster string, req api.ShardCreate) (api.OperationRef, error) {
	var out api.OperationRef
	return out, c.do(ctx, "POST", "/v1/clusters/"+esc(cluster)+"/shards", req, &out)
}

// CancelOperation asks a running operation to stop at its next step.
func (c *Client) CancelOperation(ctx context.Context, id string) (api.OperationRef, error) {
	var out api.OperationRef
	return out, c.do(ctx, "DELETE", "/v1/operations/"+esc(id), nil, &out)
}

// Tokens lists the group's API tokens (never their secrets).
func (c *Client) Tokens(ctx context.Context) ([]api.Token, error) {
	var out []api.Token
	return out, c.do(ctx, "GET", "/v1/tokens", nil, &out)
}

// CreateToken makes an API token; the answer is the only place its
// secret appears.
func (c *Client) CreateToken(ctx context.Context, req api.TokenRequest) (api.NewToken, error) {
	var out api.NewToken
	return out, c.do(ctx, "POST", "/v1/tokens", req, &out)
}

// RevokeToken forgets an API token.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/v1/tokens/"+esc(name), nil, nil)
}

// Audit returns the latest limit records of the audit trail (0: the
// server's default), oldest first.
func (c *Client) Audit(ctx context.Context, limit int) (api.AuditList, error) {
	path := "/v1/audit"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var out api.AuditList
	return out, c.do(ctx, "GET", path, nil, &out)
}

// Agents lists the registered host agents.
func (c *Client) Agents(ctx context.Context) ([]api.Agent, error) {
	var out []api.Agent
	return out, c.do(ctx, "GET", "/v1/agents", nil, &out)
}

// PutAgent registers a host agent (or moves it to a new URL).
func (c *Client) PutAgent(ctx context.Context, a api.Agent) (api.Agent, error) {
	var out api.Agent
	return out, c.do(ctx, "POST", "/v1/agents", a, &out)
}

// DeleteAgent forgets a host agent no node uses.
func (c *Client) DeleteAgent(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/v1/agents/"+esc(name), nil, nil)
}

// Reinit rebuilds a broken standby from the primary.
func (c *Client) Reinit(ctx context.Context, cluster, shard, node string) (api.OperationRef, error) {
	var out api.OperationRef
	return out, c.do(ctx, "POST", shardPath(cluster, shard)+"/nodes/"+esc(node)+"/reinit", nil, &out)
}

// Backup takes a verified base backup of the shard from its best standby.
func (c *Client) Backup(ctx context.Context, cluster, shard string) (api.OperationRef, error) {
	var out api.OperationRef
	return out, c.do(ctx, "POST", shardPath(cluster, shard)+"/backups", nil, &out)
}

// Backups lists the shard's backups.
func (c *Client) Backups(ctx context.Context, cluster, shard string) ([]api.Backup, error) {
	var out api.BackupList
	return out.Backups, c.do(ctx, "GET", shardPath(cluster, shard)+"/backups", nil, &out)
}

// Restore makes a new server from a backup and the shard's WAL archive.
func (c *Client) Restore(ctx context.Context, cluster, shard string, req api.RestoreRequest) (api.OperationRef, error) {
	var out api.OperationRef
	return out, c.do(ctx, "POST", shardPath(cluster, shard)+"/restore", req, &out)
}

// Whoami returns the name and scope of the client's token.
func (c *Client) Whoami(ctx context.Context) (api.Whoami, error) {
	var out api.Whoami
	return out, c.do(ctx, "GET", "/v1/whoami", nil, &out)
}
