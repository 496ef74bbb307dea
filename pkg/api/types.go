package api

import "time"

// Problem is an RFC 9457 problem document (application/problem+json).
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Field names the offending input field for 400 responses.
	Field string `json:"field,omitempty"`
	// LeaderID is set on 503 responses when a leader is known.
	LeaderID string `json:"leader_id,omitempty"`
	// ExpectedLossBytes is set on a 409 refusing an unsafe manual
	// failover: how far the target is behind the most advanced node.
	ExpectedLossBytes *int64 `json:"expected_loss_bytes,omitempty"`
}

// ProblemContentType is the media type of error responses.
const ProblemContentType = "application/problem+json"

// ForwardedHeader marks a request forwarded from a follower to the leader; a
// replica that is not the leader refuses such a request instead of
// forwarding it again.
const ForwardedHeader = "X-Clustermgr-Forwarded-By"

// Health is the body of GET /v1/health.
type Health struct {
	Status string `json:"status"`
	NodeID string `json:"node_id"`
	State  string `json:"state"`
}

// Member is one manager replica.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
}

// Manager is the body of GET /v1/manager: this replica's view of the group.
type Manager struct {
	NodeID        string `json:"node_id"`
	State         string `json:"state"`
	LeaderID      string `json:"leader_id"`
	LeaderAPIAddr string `json:"leader_api_addr"`
	Term          uint64 `json:"term"`
	CommitIndex   uint64 `json:"commit_index"`
	AppliedIndex  uint64 `json:"applied_index"`
	LastIndex     uint64 `json:"last_index"`
	// AppliedBytes is the size of the Raft commands this replica applied
	// since it started (the log's growth).
	AppliedBytes uint64 `json:"applied_bytes"`
	// LastSnapshot is the last Raft snapshot this replica wrote since it
	// started (absent when none).
	LastSnapshot *Snapshot `json:"last_snapshot,omitempty"`
	Members      []Member  `json:"members"`
}

// Snapshot describes a Raft snapshot a replica wrote: its size and the
// milliseconds spent encoding the state and writing it.
type Snapshot struct {
	At        time.Time `json:"at"`
	Bytes     int       `json:"bytes"`
	EncodeMs  float64   `json:"encode_ms"`
	PersistMs float64   `json:"persist_ms"`
}

// JoinRequest is the body of POST /v1/manager/members.
type JoinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
}

// TransferRequest is the body of POST /v1/manager/transfer-leadership.
type TransferRequest struct {
	To string `json:"to,omitempty"`
}

// TransferResult is the response of a leadership transfer.
type TransferResult struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// ClusterCreate is the body of POST /v1/clusters.
type ClusterCreate struct {
	Name            string `json:"name"`
	PGUser          string `json:"pg_user,omitempty"`
	PGPassword      string `json:"pg_password,omitempty"`
	ReplicationUser string `json:"replication_user,omitempty"`
	// AutoFailover defaults to true.
	AutoFailover *bool `json:"auto_failover,omitempty"`
}

// ClusterPatch is the body of PATCH /v1/clusters/{cluster}: only the fields
// present change.
type ClusterPatch struct {
	PGUser          *string `json:"pg_user,omitempty"`
	PGPassword      *string `json:"pg_password,omitempty"`
	ReplicationUser *string `json:"replication_user,omitempty"`
	AutoFailover    *bool   `json:"auto_failover,omitempty"`
}

// Cluster is a cluster as the API shows it. The password is never returned;
// PGPasswordSet says whether one is stored.
type Cluster struct {
	Name            string    `json:"name"`
	PGUser          string    `json:"pg_user"`
	PGPasswordSet   bool      `json:"pg_password_set"`
	ReplicationUser string    `json:"replication_user"`
	AutoFailover    bool      `json:"auto_failover"`
	Shards          []Shard   `json:"shards"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// ClusterList is the body of GET /v1/clusters.
type ClusterList struct {
	Clusters []Cluster `json:"clusters"`
}

// Node is a PostgreSQL node of a shard.
type Node struct {
	Name     string    `json:"name"`
	Host     string    `json:"host"`
	Port     int       `json:"port"`
	Role     string    `json:"role"`
	Agent    string    `json:"agent,omitempty"`
	DataDir  string    `json:"data_dir,omitempty"`
	Tags     []string  `json:"tags,omitempty"`
	Priority int       `json:"priority"`
	AddedAt  time.Time `json:"added_at,omitzero"`
	// ParamsApplied is the version of the shard's parameters last written
	// to the node (responses only).
	ParamsApplied uint64 `json:"params_applied,omitempty"`
	// Maintenance says an operator took the node out of failover,
	// switchover and the synchronous set, and why (responses only; POST
	// and DELETE .../nodes/{n}/maintenance change it).
	Maintenance       bool   `json:"maintenance,omitempty"`
	MaintenanceReason string `json:"maintenance_reason,omitempty"`
	// Status is the leader's observation of the node (responses only).
	Status *NodeStatus `json:"status,omitempty"`
}

// NodeAdd is the body of POST .../nodes: a node to register, or with
// Provision to create through its agent (202 with an operation).
type NodeAdd struct {
	Node
	Provision  bool              `json:"provision,omitempty"`
	Parameters map[string]string `json:"parameters,omitempty"`
}

// ShardCreate is the body of POST /v1/clusters/{c}/shards: a shard of
// existing PostgreSQL nodes (adopt mode).
type ShardCreate struct {
	Name  string `json:"name"`
	Nodes []Node `json:"nodes"`
	// Provision creates the nodes through their agents (the first node is
	// the primary) and answers 202 with an operation; the shard is
	// registered once every standby streams.
	Provision bool `json:"provision,omitempty"`
	// Parameters are PostgreSQL settings of provisioned nodes.
	Parameters map[string]string `json:"parameters,omitempty"`
	// Allow are the addresses, CIDRs or host names a provisioned shard
	// lets in over TCP (scram-sha-256) beside its nodes' hosts: the
	// manager replicas' hosts and the applications'.
	Allow []string `json:"allow,omitempty"`
}

// Shard is a shard as the API shows it; nodes are sorted by name.
type Shard struct {
	Cluster  string        `json:"cluster"`
	Name     string        `json:"name"`
	Epoch    uint64        `json:"epoch"`
	Primary  string        `json:"primary"`
	State    string        `json:"state,omitempty"`
	Settings ShardSettings `json:"settings"`
	SyncSet  []string      `json:"sync_set,omitempty"`
	// ParamsVersion counts the changes of Settings.Parameters; a node
	// whose params_applied is lower has not got them yet.
	ParamsVersion uint64 `json:"params_version,omitempty"`
	Nodes         []Node `json:"nodes"`
	Operation     string `json:"operation,omitempty"` // running operation id
	// LastDecision is the leader's latest decision for the shard.
	LastDecision *Decision `json:"last_decision,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
}

// ShardList is the body of GET /v1/clusters/{c}/shards.
type ShardList struct {
	Shards []Shard `json:"shards"`
}

// Event is one entry of the history.
type Event struct {
	ID      uint64    `json:"id"`
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"`
	Cluster string    `json:"cluster,omitempty"`
	Shard   string    `json:"shard,omitempty"`
	Node    string    `json:"node,omitempty"`
	Message string    `json:"message"`
}

// EventList is the body of GET /v1/events, oldest first.
type EventList struct {
	Events []Event `json:"events"`
}

// OperationStep is one step of an operation.
type OperationStep struct {
	Name   string    `json:"name"`
	State  string    `json:"state"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// Operation is an asynchronous job.
type Operation struct {
	ID              string          `json:"id"`
	Kind            string          `json:"kind"`
	Cluster         string          `json:"cluster,omitempty"`
	Shard           string          `json:"shard,omitempty"`
	Target          string          `json:"target,omitempty"`
	From            string          `json:"from,omitempty"`
	Epoch           uint64          `json:"epoch,omitempty"`
	Reason          string          `json:"reason,omitempty"`
	State           string          `json:"state"`
	Progress        int             `json:"progress"`
	Steps           []OperationStep `json:"steps"`
	Error           string          `json:"error,omitempty"`
	CancelRequested bool            `json:"cancel_requested,omitempty"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
}

// OperationList is the body of GET /v1/operations.
type OperationList struct {
	Operations []Operation `json:"operations"`
}

// ShardSettings are a shard's HA settings.
type ShardSettings struct {
	Synchronous      string `json:"synchronous"`
	MaxLagOnFailover int64  `json:"max_lag_on_failover"`
	BackupSchedule   string `json:"backup_schedule,omitempty"`
	BackupRetention  int    `json:"backup_retention,omitempty"`
	ReplicationSlots bool   `json:"replication_slots,omitempty"`
	// Parameters are the PostgreSQL settings the manager keeps on every
	// node.
	Parameters map[string]string `json:"parameters,omitempty"`
}

// ShardPatch is the body of PATCH /v1/clusters/{c}/shards/{s}.
type ShardPatch struct {
	Synchronous      *string `json:"synchronous,omitempty"`
	MaxLagOnFailover *int64  `json:"max_lag_on_failover,omitempty"`
	// BackupSchedule is a cron expression ("0 3 * * *", "@daily",
	// "@every 6h"); "" stops scheduled backups.
	BackupSchedule  *string `json:"backup_schedule,omitempty"`
	BackupRetention *int    `json:"backup_retention,omitempty"`
	// Parameters set PostgreSQL settings on every node of the shard
	// (ALTER SYSTEM, then a reload); null resets one. Only the named
	// parameters change. One that needs a restart shows in each node's
	// pending_restart until the node restarts (POST .../restart).
	Parameters map[string]*string `json:"parameters,omitempty"`
}

// NodeStatus is what the leader observes of a node now.
type NodeStatus struct {
	Health     string `json:"health"`
	InRecovery bool   `json:"in_recovery"`
	Timeline   uint32 `json:"timeline,omitempty"`
	// TimelineFrom says where the timeline was read (wal-file, replay,
	// receiver, checkpoint).
	TimelineFrom string `json:"timeline_from,omitempty"`
	CurrentLSN   string `json:"current_lsn,omitempty"`
	ReceiveLSN   string `json:"receive_lsn,omitempty"`
	ReplayLSN    string `json:"replay_lsn,omitempty"`
	LagBytes     int64  `json:"lag_bytes"`
	// LagSeconds is the standby's replay lag as its primary measures it
	// (pg_stat_replication.replay_lag; 0 when caught up and idle).
	LagSeconds    float64   `json:"lag_seconds,omitempty"`
	SyncState     string    `json:"sync_state,omitempty"`
	StreamingFrom string    `json:"streaming_from,omitempty"`
	Connections   int       `json:"connections,omitempty"`
	MaxConns      int       `json:"max_connections,omitempty"`
	LastProbe     time.Time `json:"last_probe,omitzero"`
	Error         string    `json:"error,omitempty"`
	// PendingRestart names the parameters whose new values take effect
	// only after the node restarts (pg_settings.pending_restart).
	PendingRestart []string `json:"pending_restart,omitempty"`
	// ArchiveError says why WAL archiving fails on this node.
	ArchiveError string `json:"archive_error,omitempty"`
}

// Candidate is one standby's standing in a failover decision.
type Candidate struct {
	Node     string `json:"node"`
	LSN      string `json:"lsn"`
	Timeline uint32 `json:"timeline"`
	Priority int    `json:"priority"`
	LagBytes int64  `json:"lag_bytes"`
	Chosen   bool   `json:"chosen,omitempty"`
	Rejected string `json:"rejected,omitempty"`
}

// Decision is the leader's last decision for a shard.
type Decision struct {
	At         time.Time   `json:"at"`
	Kind       string      `json:"kind"`
	Node       string      `json:"node,omitempty"`
	Reason     string      `json:"reason"`
	Candidates []Candidate `json:"candidates,omitempty"`
}

// Primary is the body of GET .../primary.
type Primary struct {
	Node string `json:"node"`
	Host string `json:"host"`
	Port int    `json:"port"`
}

// Connection is the body of GET .../connection: libpq connection strings
// of a shard (no password: libpq takes it from PGPASSWORD or ~/.pgpass).
type Connection struct {
	Cluster string `json:"cluster"`
	Shard   string `json:"shard"`
	// ReadWrite reaches whichever node is primary
	// (target_session_attrs=read-write), the declared one first.
	ReadWrite string `json:"read_write"`
	// ReadOnly prefers a standby (target_session_attrs=prefer-standby,
	// libpq 14 and later) and falls back to the primary.
	ReadOnly string `json:"read_only"`
}

// SwitchoverRequest is the body of POST .../switchover and .../failover.
type SwitchoverRequest struct {
	To string `json:"to,omitempty"`
	// Force, on a manual failover, accepts a target that may lack
	// acknowledged commits (the event records it).
	Force bool `json:"force,omitempty"`
	// OldPrimaryGone, on a manual failover, promotes even when the old
	// primary could not be fenced and may still serve a majority of the
	// shard (a standby unseen, perhaps on its side of a partition): for
	// an operator who knows its host is gone.
	OldPrimaryGone bool `json:"old_primary_gone,omitempty"`
	// At, on a switchover, schedules it (RFC 3339): the answer is 201
	// with the schedule, listed at /v1/schedules until it starts. At its
	// time the leader starts it, or refuses it, saying why, when the
	// shard is not healthy then.
	At time.Time `json:"at,omitzero"`
}

// Schedule is a scheduled switchover.
type Schedule struct {
	ID      string    `json:"id"`
	Cluster string    `json:"cluster"`
	Shard   string    `json:"shard"`
	To      string    `json:"to,omitempty"`
	At      time.Time `json:"at"`
	// State is scheduled, started (Operation is the switchover), refused
	// or cancelled (Reason says why).
	State     string    `json:"state"`
	Reason    string    `json:"reason,omitempty"`
	Operation string    `json:"operation,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ScheduleList is the body of GET /v1/schedules, soonest first.
type ScheduleList struct {
	Schedules []Schedule `json:"schedules"`
}

// RestartRequest is the body of POST .../restart: restart one node, or
// the whole shard node by node (rolling: the standbys one at a time, each
// streaming again before the next, then a switchover that restarts the
// old primary as a standby; the primary first, in place, when a
// parameter standbys must hold at least as high decreases), and then only
// the nodes with a parameter pending a restart (only_pending).
type RestartRequest struct {
	Node        string `json:"node,omitempty"`
	Rolling     bool   `json:"rolling,omitempty"`
	OnlyPending bool   `json:"only_pending,omitempty"`
}

// MaintenanceRequest is the optional body of POST .../maintenance.
type MaintenanceRequest struct {
	Reason string `json:"reason,omitempty"`
}

// OperationRef is the 202 answer of a request that started an operation.
type OperationRef struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	Href string `json:"href"`
}

// WatchHeader, in the leader's answer to a follower's view, says that
// the leader's asks for the probes of primaries it needs (PeerWatch)
// reach that follower: the follower then probes a healthy primary only
// in its sweeps.
const WatchHeader = "X-Clustermgr-Watch"

// PeerWatch is the leader's ask to a follower: probe these nodes (keys
// cluster/shard/node) at once and each round for a few rounds, and send
// the view when one is down.
type PeerWatch struct {
	Keys []string `json:"keys"`
}

// PeerView is a manager replica's view of the nodes it probes, sent by a
// follower to the leader.
type PeerView struct {
	Replica string   `json:"replica"`
	Down    []string `json:"down"` // cluster/shard/node keys the replica sees down
	// Probed, the keys the replica probed, is no longer sent (the leader
	// never read it); it is accepted from older replicas.
	Probed []string `json:"probed,omitempty"`
	// Keys are the ids of the secret keys the replica holds (never the
	// keys): the leader seals secrets only with a key every replica has.
	Keys []string `json:"keys,omitempty"`
	// Level is the highest level of the state machine's rules the
	// replica's build applies (meta.Level); absent from a build before
	// levels. The leader raises the group's level once every replica
	// applies it.
	Level int `json:"level,omitempty"`
}

// Backup is a verified base backup.
type Backup struct {
	ID        string    `json:"id"`
	Node      string    `json:"node"`
	Agent     string    `json:"agent"`
	Path      string    `json:"path"`
	SizeBytes int64     `json:"size_bytes"`
	StartLSN  string    `json:"start_lsn"`
	StopLSN   string    `json:"stop_lsn"`
	Timeline  uint32    `json:"timeline"`
	Seconds   float64   `json:"duration_seconds"`
	Verified  bool      `json:"verified"`
	CreatedAt time.Time `json:"created_at"`
}

// BackupList is the body of GET .../backups, oldest first.
type BackupList struct {
	Backups []Backup `json:"backups"`
}

// RestoreRequest is the body of POST .../restore.
type RestoreRequest struct {
	Backup     string `json:"backup"`
	TargetTime string `json:"target_time,omitempty"`
	Node       Node   `json:"node"`
	AsNewShard string `json:"as_new_shard,omitempty"`
}

// TokenRequest creates an API token.
type TokenRequest struct {
	Name  string `json:"name"`
	Scope string `json:"scope"`
}

// Token is an API token as the API shows it: never its secret.
type Token struct {
	Name      string    `json:"name"`
	Scope     string    `json:"scope"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// NewToken is the answer to a token's creation, the only one that shows
// its secret.
type NewToken struct {
	Token
	Secret string `json:"secret"`
}

// AuditRecord is one accepted mutation of the API.
type AuditRecord struct {
	ID           uint64    `json:"id"`
	At           time.Time `json:"at"`
	Token        string    `json:"token"`
	Remote       string    `json:"remote"`
	Via          string    `json:"via,omitempty"`
	ForwardedFor string    `json:"forwarded_for,omitempty"`
	Method       string    `json:"method"`
	Path         string    `json:"path"`
	Status       int       `json:"status"`
	Outcome      string    `json:"outcome,omitempty"`
}

// AuditList is a page of the audit trail, oldest first, and how many
// requests the answering replica refused for want of a valid token.
type AuditList struct {
	Records      []AuditRecord `json:"records"`
	RejectedAuth uint64        `json:"rejected_auth"`
}

// Agent is a registered host agent.
type Agent struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// HealthURL is where the agent serves its nodes' health checks for
	// load balancers (clustermgr agent --health-addr), plain HTTP.
	HealthURL string    `json:"health_url,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// WebhookRequest is the body of POST /v1/webhooks: a subscription to
// create, or to replace (by name).
type WebhookRequest struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Kinds are the event kinds to deliver (promotion, operation,
	// node_health, shard_state, decision, ...); every kind when empty.
	Kinds []string `json:"kinds,omitempty"`
	// Cluster keeps one cluster's events.
	Cluster string `json:"cluster,omitempty"`
	// Secret signs every delivery: X-Clustermgr-Signature-256 is
	// "sha256=" and the hex HMAC-SHA256 of the body under it. It is
	// never shown again.
	Secret string `json:"secret"`
}

// Webhook is a subscription as the API shows it (never its secret).
type Webhook struct {
	Name    string   `json:"name"`
	URL     string   `json:"url"`
	Kinds   []string `json:"kinds,omitempty"`
	Cluster string   `json:"cluster,omitempty"`
	// Delivered is the id of the last event delivered (or passed over
	// as not matching).
	Delivered uint64    `json:"delivered"`
	CreatedAt time.Time `json:"created_at"`
	// LastError is the latest failed attempt the leader saw, if the
	// latest attempt failed.
	LastError string `json:"last_error,omitempty"`
}

// WebhookList is the body of GET /v1/webhooks.
type WebhookList struct {
	Webhooks []Webhook `json:"webhooks"`
}

// Delivery is one attempt to deliver an event (the leader keeps the last
// 50 per subscription).
type Delivery struct {
	At      time.Time `json:"at"`
	EventID uint64    `json:"event_id,omitempty"`
	Kind    string    `json:"kind,omitempty"`
	// Status is the receiver's HTTP status (0 when none came).
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
	Millis int64  `json:"ms"`
}

// DeliveryList is the body of GET /v1/webhooks/{name}/deliveries, newest
// first.
type DeliveryList struct {
	Deliveries []Delivery `json:"deliveries"`
}

// Whoami is the body of GET /v1/whoami: the token a request carried.
type Whoami struct {
	Token string `json:"token"`
	Scope string `json:"scope"`
}
