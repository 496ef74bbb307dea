package openapi

import (
	"net/http"
	"reflect"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// Route describes one endpoint of the API.
type Route struct {
	Method, Path string
	ID           string // operationId
	Tag          string
	Summary      string
	// Scope is the token scope the route needs: open, read, operate or
	// admin; peer for the replicas' own endpoint.
	Scope string
	// PeerOK: the group's peer credential is accepted too.
	PeerOK bool
	// Leader: served by the leader; a follower forwards it (a GET with
	// consistency=stale is answered from the follower's own state).
	Leader bool
	Query  []Param
	// Request is the body's type; nil for none. BodyOptional: it may be
	// left out.
	Request      reflect.Type
	BodyOptional bool
	// Responses maps a success status to its body's type (nil: no body).
	Responses map[int]reflect.Type
	// Media is the 200 body's media type when it is not JSON (comma
	// separated when it may be one of several).
	Media string
}

// Param is a query parameter.
type Param struct {
	Name, Type, Description string
	Enum                    []string
	Min, Max                int
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

var (
	consistencyParam = Param{Name: "consistency", Type: "string", Enum: []string{"stale", "none", "leader", "weak", "linearizable", "strong"},
		Description: "Read level: leader (default) reads the leader's applied state; linearizable confirms leadership first; stale answers from the replica asked, without forwarding."}
	staleParam = Param{Name: "stale", Type: "boolean", Description: "true: same as consistency=stale."}
	forceParam = Param{Name: "force", Type: "boolean", Description: "Remove even when the manager would refuse (see the 409 detail)."}
)

func reads(p ...Param) []Param { return append([]Param{consistencyParam, staleParam}, p...) }

// Routes returns every route of the API, in the order of the document.
func Routes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/", ID: "getDashboard", Tag: "dashboard", Scope: "open", Media: "text/html",
			Summary: "The dashboard (the page asks for a token and reads the API with it).", Responses: map[int]reflect.Type{200: nil}},
		{Method: http.MethodGet, Path: "/ui/{file}", ID: "getDashboardFile", Tag: "dashboard", Scope: "open",
			Summary: "The dashboard's script and style.", Responses: map[int]reflect.Type{200: nil}, Media: "text/javascript,text/css"},
		{Method: http.MethodGet, Path: "/v1/health", ID: "getHealth", Tag: "manager", Scope: "open",
			Summary: "Liveness of the replica asked (never forwarded).", Responses: map[int]reflect.Type{200: typeOf[api.Health]()}},
		{Method: http.MethodGet, Path: "/v1/openapi.json", ID: "getOpenAPI", Tag: "manager", Scope: "open",
			Summary: "This document.", Responses: map[int]reflect.Type{200: nil}},
		{Method: http.MethodGet, Path: "/v1/manager", ID: "getManager", Tag: "manager", Scope: "read",
			Summary: "The manager group as the replica asked sees it: members, leader, term, indexes.", Responses: map[int]reflect.Type{200: typeOf[api.Manager]()}},
		{Method: http.MethodGet, Path: "/v1/manager/pprof/{profile}", ID: "getProfile", Tag: "manager", Scope: "admin", Media: "application/octet-stream,text/plain",
			Query: []Param{{Name: "seconds", Type: "integer", Min: 1, Max: 60, Description: "How long a CPU profile samples (default 30) or an execution trace records (default 1); profile and trace only."},
				{Name: "debug", Type: "integer", Min: 0, Max: 2, Description: "1 or 2: text instead of the pprof format (not for profile or trace)."}},
			Summary: "A Go runtime profile of the replica asked (profile: CPU; heap, allocs, goroutine, block, mutex, threadcreate), for go tool pprof, or its execution trace (trace), for go tool trace.", Responses: map[int]reflect.Type{200: nil}},
		{Method: http.MethodGet, Path: "/v1/whoami", ID: "whoami", Tag: "tokens", Scope: "read",
			Summary: "The name and scope of the token the request carries (answered by the replica asked).", Responses: map[int]reflect.Type{200: typeOf[api.Whoami]()}},
		{Method: http.MethodGet, Path: "/metrics", ID: "getMetrics", Tag: "manager", Scope: "read", Media: "text/plain",
			Summary: "Prometheus metrics of the replica asked (text exposition format; gzip when accepted).", Responses: map[int]reflect.Type{200: nil}},
		{Method: http.MethodPost, Path: "/v1/internal/views", ID: "postPeerView", Tag: "internal", Scope: "peer",
			Summary: "A follower's view of the nodes it probes (the group's peer credential only).", Request: typeOf[api.PeerView](), Responses: map[int]reflect.Type{204: nil}},
		{Method: http.MethodPost, Path: "/v1/internal/watch", ID: "postPeerWatch", Tag: "internal", Scope: "peer",
			Summary: "The leader's ask to a follower: probe these nodes now and each round for a few rounds (the group's peer credential only).", Request: typeOf[api.PeerWatch](), Responses: map[int]reflect.Type{204: nil}},
		{Method: http.MethodPost, Path: "/v1/manager/members", ID: "joinMember", Tag: "manager", Scope: "admin", PeerOK: true, Leader: true,
			Summary: "Add a replica to the group as a voter.", Request: typeOf[api.JoinRequest](), Responses: map[int]reflect.Type{201: typeOf[api.Member]()}},
		{Method: http.MethodDelete, Path: "/v1/manager/members/{id}", ID: "removeMember", Tag: "manager", Scope: "admin", Leader: true,
			Summary: "Remove a replica from the group.", Responses: map[int]reflect.Type{204: nil}},
		{Method: http.MethodPost, Path: "/v1/manager/transfer-leadership", ID: "transferLeadership", Tag: "manager", Scope: "operate", Leader: true,
			Summary: "Hand the group's leadership to another replica (any, or `to`).", Request: typeOf[api.TransferRequest](), BodyOptional: true,
			Responses: map[int]reflect.Type{202: typeOf[api.TransferResult]()}},

		{Method: http.MethodGet, Path: "/v1/agents", ID: "listAgents", Tag: "agents", Scope: "read", Leader: true, Query: reads(),
			Summary: "Registered host agents, by name.", Responses: map[int]reflect.Type{200: typeOf[[]api.Agent]()}},
		{Method: http.MethodPost, Path: "/v1/agents", ID: "putAgent", Tag: "agents", Scope: "admin", Leader: true,
			Summary: "Register a host agent, or move a name to a new URL.", Request: typeOf[api.Agent](), Responses: map[int]reflect.Type{201: typeOf[api.Agent]()}},
		{Method: http.MethodDelete, Path: "/v1/agents/{name}", ID: "deleteAgent", Tag: "agents", Scope: "admin", Leader: true,
			Summary: "Unregister an agent (409 while a node or backup uses it).", Responses: map[int]reflect.Type{204: nil}},

		{Method: http.MethodGet, Path: "/v1/tokens", ID: "listTokens", Tag: "tokens", Scope: "admin", Leader: true, Query: reads(),
			Summary: "API tokens, never their secrets.", Responses: map[int]reflect.Type{200: typeOf[[]api.Token]()}},
		{Method: http.MethodPost, Path: "/v1/tokens", ID: "createToken", Tag: "tokens", Scope: "admin", Leader: true,
			Summary: "Create a token; the answer is the only one that shows its secret.", Request: typeOf[api.TokenRequest](), Responses: map[int]reflect.Type{201: typeOf[api.NewToken]()}},
		{Method: http.MethodDelete, Path: "/v1/tokens/{name}", ID: "revokeToken", Tag: "tokens", Scope: "admin", Leader: true,
			Summary: "Revoke a token.", Responses: map[int]reflect.Type{204: nil}},
		{Method: http.MethodGet, Path: "/v1/audit", ID: "listAudit", Tag: "tokens", Scope: "admin", Leader: true,
			Query: reads(Param{Name: "limit", Type: "integer", Min: 1, Max: meta.MaxAudit, Description: "At most this many records (default 100): the latest ones, or the first after after_id."},
				Param{Name: "after_id", Type: "integer", Description: "Records after this id, oldest first."}),
			Summary: "The audit trail of accepted changes.", Responses: map[int]reflect.Type{200: typeOf[api.AuditList]()}},

		{Method: http.MethodGet, Path: "/v1/clusters", ID: "listClusters", Tag: "clusters", Scope: "read", Leader: true, Query: reads(),
			Summary: "Every cluster with its shards and their nodes' status.", Responses: map[int]reflect.Type{200: typeOf[api.ClusterList]()}},
		{Method: http.MethodPost, Path: "/v1/clusters", ID: "createCluster", Tag: "clusters", Scope: "admin", Leader: true,
			Summary: "Create a cluster.", Request: typeOf[api.ClusterCreate](), Responses: map[int]reflect.Type{201: typeOf[api.Cluster]()}},
		{Method: http.MethodGet, Path: "/v1/clusters/{cluster}", ID: "getCluster", Tag: "clusters", Scope: "read", Leader: true, Query: reads(),
			Summary: "One cluster.", Responses: map[int]reflect.Type{200: typeOf[api.Cluster]()}},
		{Method: http.MethodPatch, Path: "/v1/clusters/{cluster}", ID: "patchCluster", Tag: "clusters", Scope: "operate", Leader: true,
			Summary: "Pause or resume automatic failover (operate); change credentials (admin).", Request: typeOf[api.ClusterPatch](), Responses: map[int]reflect.Type{200: typeOf[api.Cluster]()}},
		{Method: http.MethodDelete, Path: "/v1/clusters/{cluster}", ID: "deleteCluster", Tag: "clusters", Scope: "admin", Leader: true, Query: []Param{forceParam},
			Summary: "Delete a cluster (its shards too with force).", Responses: map[int]reflect.Type{204: nil}},

		{Method: http.MethodGet, Path: "/v1/clusters/{cluster}/shards", ID: "listShards", Tag: "shards", Scope: "read", Leader: true, Query: reads(),
			Summary: "A cluster's shards.", Responses: map[int]reflect.Type{200: typeOf[api.ShardList]()}},
		{Method: http.MethodPost, Path: "/v1/clusters/{cluster}/shards", ID: "createShard", Tag: "shards", Scope: "admin", Leader: true,
			Summary: "Adopt a shard of running nodes (201), or provision one through the agents (202 with an operation).", Request: typeOf[api.ShardCreate](),
			Responses: map[int]reflect.Type{201: typeOf[api.Shard](), 202: typeOf[api.OperationRef]()}},
		{Method: http.MethodGet, Path: "/v1/clusters/{cluster}/shards/{shard}", ID: "getShard", Tag: "shards", Scope: "read", Leader: true, Query: reads(),
			Summary: "A shard: nodes with their status, the last decision, the running operation.", Responses: map[int]reflect.Type{200: typeOf[api.Shard]()}},
		{Method: http.MethodPatch, Path: "/v1/clusters/{cluster}/shards/{shard}", ID: "patchShard", Tag: "shards", Scope: "admin", Leader: true,
			Summary: "Change a shard's HA settings.", Request: typeOf[api.ShardPatch](), Responses: map[int]reflect.Type{200: typeOf[api.Shard]()}},
		{Method: http.MethodDelete, Path: "/v1/clusters/{cluster}/shards/{shard}", ID: "deleteShard", Tag: "shards", Scope: "admin", Leader: true,
			Summary: "Stop managing a shard (its nodes keep running).", Responses: map[int]reflect.Type{204: nil}},
		{Method: http.MethodGet, Path: "/v1/clusters/{cluster}/shards/{shard}/primary", ID: "getPrimary", Tag: "shards", Scope: "read", Leader: true, Query: reads(),
			Summary: "Where to write now.", Responses: map[int]reflect.Type{200: typeOf[api.Primary]()}},
		{Method: http.MethodGet, Path: "/v1/clusters/{cluster}/shards/{shard}/connection", ID: "getConnection", Tag: "shards", Scope: "read", Leader: true, Query: reads(),
			Summary: "libpq multi-host connection strings of the shard: read-write (target_session_attrs=read-write, the primary first) and read-only (prefer-standby).", Responses: map[int]reflect.Type{200: typeOf[api.Connection]()}},
		{Method: http.MethodPost, Path: "/v1/clusters/{cluster}/shards/{shard}/switchover", ID: "switchover", Tag: "operations", Scope: "operate", Leader: true,
			Summary: "Planned switchover to `to` or the best standby: now (202 with the operation), or at `at` (201 with the schedule).", Request: typeOf[api.SwitchoverRequest](), BodyOptional: true,
			Responses: map[int]reflect.Type{201: typeOf[api.Schedule](), 202: typeOf[api.OperationRef]()}},
		{Method: http.MethodPost, Path: "/v1/clusters/{cluster}/shards/{shard}/failover", ID: "failover", Tag: "operations", Scope: "operate", Leader: true,
			Summary: "Manual failover: promote a standby now (refused, 409, when it may lack acknowledged commits unless force).", Request: typeOf[api.SwitchoverRequest](), BodyOptional: true,
			Responses: map[int]reflect.Type{202: typeOf[api.OperationRef]()}},
		{Method: http.MethodPost, Path: "/v1/clusters/{cluster}/shards/{shard}/restart", ID: "restartShard", Tag: "operations", Scope: "operate", Leader: true,
			Summary: "Restart one node, or the shard node by node (rolling; only_pending: the nodes with a parameter pending a restart), as an operation.", Request: typeOf[api.RestartRequest](),
			Responses: map[int]reflect.Type{202: typeOf[api.OperationRef]()}},
		{Method: http.MethodPost, Path: "/v1/clusters/{cluster}/shards/{shard}/nodes/{node}/maintenance", ID: "startMaintenance", Tag: "shards", Scope: "operate", Leader: true,
			Summary: "Put a standby in maintenance: no failover, switchover or synchronous set for it, no rejoin, repoint or parameters; its health check leaves the read pools.", Request: typeOf[api.MaintenanceRequest](), BodyOptional: true,
			Responses: map[int]reflect.Type{200: typeOf[api.Shard]()}},
		{Method: http.MethodDelete, Path: "/v1/clusters/{cluster}/shards/{shard}/nodes/{node}/maintenance", ID: "endMaintenance", Tag: "shards", Scope: "operate", Leader: true,
			Summary: "Take a node out of maintenance.", Responses: map[int]reflect.Type{200: typeOf[api.Shard]()}},
		{Method: http.MethodPost, Path: "/v1/clusters/{cluster}/shards/{shard}/nodes/{node}/rejoin", ID: "rejoinNode", Tag: "operations", Scope: "operate", Leader: true,
			Summary: "Bring a node back as a standby of the primary (rewinding when needed).", BodyOptional: true, Responses: map[int]reflect.Type{202: typeOf[api.OperationRef]()}},
		{Method: http.MethodPost, Path: "/v1/clusters/{cluster}/shards/{shard}/nodes/{node}/reinit", ID: "reinitNode", Tag: "operations", Scope: "operate", Leader: true,
			Summary: "Rebuild a standby from the primary (pg_basebackup through its agent).", BodyOptional: true, Responses: map[int]reflect.Type{202: typeOf[api.OperationRef]()}},
		{Method: http.MethodGet, Path: "/v1/clusters/{cluster}/shards/{shard}/backups", ID: "listBackups", Tag: "backups", Scope: "read", Leader: true, Query: reads(),
			Summary: "A shard's verified base backups, oldest first.", Responses: map[int]reflect.Type{200: typeOf[api.BackupList]()}},
		{Method: http.MethodPost, Path: "/v1/clusters/{cluster}/shards/{shard}/backups", ID: "takeBackup", Tag: "backups", Scope: "operate", Leader: true,
			Summary: "Take a base backup now.", BodyOptional: true, Responses: map[int]reflect.Type{202: typeOf[api.OperationRef]()}},
		{Method: http.MethodPost, Path: "/v1/clusters/{cluster}/shards/{shard}/restore", ID: "restore", Tag: "backups", Scope: "admin", Leader: true,
			Summary: "Restore a backup (to a point in time) onto a new node, as a new shard or in place.", Request: typeOf[api.RestoreRequest](),
			Responses: map[int]reflect.Type{202: typeOf[api.OperationRef]()}},
		{Method: http.MethodPost, Path: "/v1/clusters/{cluster}/shards/{shard}/nodes", ID: "addNode", Tag: "shards", Scope: "admin", Leader: true,
			Summary: "Register a running standby (201), or provision one through its agent (202 with an operation).", Request: typeOf[api.NodeAdd](),
			Responses: map[int]reflect.Type{201: typeOf[api.Shard](), 202: typeOf[api.OperationRef]()}},
		{Method: http.MethodDelete, Path: "/v1/clusters/{cluster}/shards/{shard}/nodes/{node}", ID: "removeNode", Tag: "shards", Scope: "admin", Leader: true,
			Query:   []Param{forceParam, {Name: "purge", Type: "boolean", Description: "Also stop the node and remove its data directory through its agent (202 with an operation)."}},
			Summary: "Remove a standby from the shard.", Responses: map[int]reflect.Type{202: typeOf[api.OperationRef](), 204: nil}},

		{Method: http.MethodGet, Path: "/v1/webhooks", ID: "listWebhooks", Tag: "webhooks", Scope: "admin", Leader: true, Query: reads(),
			Summary: "Webhook subscriptions (never their secrets), how far each got and its last error.", Responses: map[int]reflect.Type{200: typeOf[api.WebhookList]()}},
		{Method: http.MethodPost, Path: "/v1/webhooks", ID: "putWebhook", Tag: "webhooks", Scope: "admin", Leader: true,
			Summary: "Create or replace a subscription: events of the kinds it names (of one cluster) are posted to its URL, signed with HMAC-SHA256 of its secret, retried until delivered.",
			Request: typeOf[api.WebhookRequest](), Responses: map[int]reflect.Type{201: typeOf[api.Webhook]()}},
		{Method: http.MethodDelete, Path: "/v1/webhooks/{name}", ID: "deleteWebhook", Tag: "webhooks", Scope: "admin", Leader: true,
			Summary: "Remove a subscription.", Responses: map[int]reflect.Type{204: nil}},
		{Method: http.MethodGet, Path: "/v1/webhooks/{name}/deliveries", ID: "listDeliveries", Tag: "webhooks", Scope: "admin", Leader: true,
			Summary: "The leader's last 50 attempts for a subscription, newest first.", Responses: map[int]reflect.Type{200: typeOf[api.DeliveryList]()}},
		{Method: http.MethodGet, Path: "/v1/schedules", ID: "listSchedules", Tag: "operations", Scope: "read", Leader: true,
			Query:   reads(Param{Name: "cluster", Type: "string", Description: "Only this cluster's schedules."}),
			Summary: "Scheduled switchovers, soonest first: waiting, started, refused (with why) or cancelled.", Responses: map[int]reflect.Type{200: typeOf[api.ScheduleList]()}},
		{Method: http.MethodGet, Path: "/v1/schedules/{id}", ID: "getSchedule", Tag: "operations", Scope: "read", Leader: true, Query: reads(),
			Summary: "One scheduled switchover.", Responses: map[int]reflect.Type{200: typeOf[api.Schedule]()}},
		{Method: http.MethodDelete, Path: "/v1/schedules/{id}", ID: "cancelSchedule", Tag: "operations", Scope: "operate", Leader: true,
			Summary: "Cancel a scheduled switchover that has not started (409 once it has).", Responses: map[int]reflect.Type{200: typeOf[api.Schedule]()}},
		{Method: http.MethodGet, Path: "/v1/events", ID: "listEvents", Tag: "history", Scope: "read", Leader: true,
			Query: reads(Param{Name: "cluster", Type: "string", Description: "Only this cluster's events."},
				Param{Name: "since", Type: "string", Description: "Events after this event id, or at or after this RFC 3339 time."},
				Param{Name: "limit", Type: "integer", Min: 1, Max: meta.MaxEvents, Description: "At most this many (default 100), the latest."}),
			Summary: "The event history, oldest first.", Responses: map[int]reflect.Type{200: typeOf[api.EventList]()}},
		{Method: http.MethodGet, Path: "/v1/operations", ID: "listOperations", Tag: "operations", Scope: "read", Leader: true, Query: reads(),
			Summary: "Operations, running and finished.", Responses: map[int]reflect.Type{200: typeOf[api.OperationList]()}},
		{Method: http.MethodGet, Path: "/v1/operations/{id}", ID: "getOperation", Tag: "operations", Scope: "read", Leader: true, Query: reads(),
			Summary: "One operation with its steps.", Responses: map[int]reflect.Type{200: typeOf[api.Operation]()}},
		{Method: http.MethodDelete, Path: "/v1/operations/{id}", ID: "cancelOperation", Tag: "operations", Scope: "operate", Leader: true,
			Summary: "Ask a running operation to stop at its next safe point.", Responses: map[int]reflect.Type{202: typeOf[api.OperationRef]()}},
	}
}
