package meta

import (
	"encoding/json"
	"time"
)

// Role is the declared role of a PostgreSQL node.
type Role string

// Declared roles.
const (
	RolePrimary Role = "primary"
	RoleStandby Role = "standby"
)

// TagNoFailover marks a node that must never be promoted automatically.
const TagNoFailover = "nofailover"

// MaxEvents bounds the event history kept in the replicated state. It is part
// of the state machine's definition: changing it changes what every replica
// keeps, so it is a constant rather than a setting.
const MaxEvents = 10000

// State is the whole replicated state. It is owned by the FSM; readers get it
// through Store.View while the FSM holds its read lock.
type State struct {
	Members    map[string]*Member    `json:"members"`
	Clusters   map[string]*Cluster   `json:"clusters"`
	Operations map[string]*Operation `json:"operations"`
	Backups    map[string]*Backup    `json:"backups,omitempty"`
	Events     []Event               `json:"events"`
	// NextEventID is the id the next event receives; ids never repeat even
	// after old events fall off the bounded history.
	NextEventID uint64 `json:"next_event_id"`
	// PeerSecret authenticates followers' views to the leader. The group
	// generates it once, so that failover needs no operator setting; it is
	// never shown by the API.
	PeerSecret string `json:"peer_secret,omitempty"`
	// Agents are the registered host agents by name.
	Agents map[string]*AgentRecord `json:"agents,omitempty"`
	// Tokens are the API's credentials by name, kept hashed.
	Tokens map[string]*Token `json:"tokens,omitempty"`
	// Audit is the bounded trail of accepted API mutations, oldest first.
	Audit       []AuditRecord `json:"audit,omitempty"`
	NextAuditID uint64        `json:"next_audit_id,omitempty"`
	// Schedules are the scheduled switchovers by id.
	Schedules map[string]*Schedule `json:"schedules,omitempty"`
	// Webhooks are the event subscriptions by name.
	Webhooks map[string]*Webhook `json:"webhooks,omitempty"`
	// Level is the version of the rules the group applies commands by
	// (see Level); 0 in a state from before levels, which is level 1.
	Level int `json:"level,omitempty"`
	// Generation changes with each command this replica applies and each
	// snapshot it restores (its own count, never stored): what a reader
	// derives from the state stays current while it is unchanged.
	Generation uint64 `json:"-"`
	// FleetGeneration is Generation but for the commands that only add
	// to the event history or the audit trail, or move a webhook: what
	// is derived from the fleet (clusters, nodes, agents, operations)
	// stays current while it is unchanged.
	FleetGeneration uint64 `json:"-"`
}

// NewState returns an empty state.
func NewState() *State {
	return &State{
		Members:     map[string]*Member{},
		Clusters:    map[string]*Cluster{},
		Operations:  map[string]*Operation{},
		Backups:     map[string]*Backup{},
		Events:      []Event{},
		NextEventID: 1,
		Tokens:      map[string]*Token{},
		Agents:      map[string]*AgentRecord{},
		NextAuditID: 1,
		Schedules:   map[string]*Schedule{},
		Webhooks:    map[string]*Webhook{},
	}
}

// Member is a manager replica as recorded in the state, so that any replica
// can find another's API address (followers forward requests to the leader).
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
}

// Cluster is a named group of shards sharing credentials and settings.
type Cluster struct {
	Name      string            `json:"name"`
	Settings  ClusterSettings   `json:"settings"`
	Shards    map[string]*Shard `json:"shards"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// ClusterSettings are the connection settings the manager uses for every
// node of a cluster. PGPassword is stored (it must reach every replica) but
// the API never returns it.
type ClusterSettings struct {
	PGUser          string `json:"pg_user"`
	PGPassword      string `json:"pg_password"`
	ReplicationUser string `json:"replication_user"`
	AutoFailover    bool   `json:"auto_failover"`
}

// Shard is one PostgreSQL streaming-replication group: a primary and its
// standbys.
type Shard struct {
	Name     string           `json:"name"`
	Nodes    map[string]*Node `json:"nodes"`
	Epoch    uint64           `json:"epoch"`
	Settings ShardSettings    `json:"settings"`
	// SyncSet is the synchronous standby set the leader last decided; it
	// is recorded before synchronous_standby_names is changed on the
	// primary, so a promotion can rely on it.
	SyncSet []string `json:"sync_set,omitempty"`
	// SyncPool, set at a promotion in synchronous mode until a SyncSet is
	// recorded, names the standbys one of which holds every commit: the
	// promoted primary waits for any one of them ('*'). A failover then
	// needs all of them seen, and promotes the most advanced.
	SyncPool  []string  `json:"sync_pool,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// Promoted is the node the last promotion made primary, at
	// PromotedAt; PrimaryTimeline and PrimaryHistory are its timeline and
	// timeline history files as the promotion read them (0 and nil when
	// it could not).
	Promoted        string            `json:"promoted,omitempty"`
	PromotedAt      time.Time         `json:"promoted_at,omitzero"`
	PrimaryTimeline uint32            `json:"primary_timeline,omitempty"`
	PrimaryHistory  map[string]string `json:"primary_history,omitempty"`
	// ParamsVersion counts the changes of Settings.Parameters; a node
	// whose ParamsApplied is lower still needs them written.
	// ParamsReset are the parameters an operator removed: reset on every
	// node (ALTER SYSTEM RESET) until set again.
	ParamsVersion uint64   `json:"params_version,omitempty"`
	ParamsReset   []string `json:"params_reset,omitempty"`
}

// Bounds of the timeline history a promotion records.
const (
	MaxHistoryFiles     = 32
	MaxHistoryFileBytes = 64 << 10
)

// Synchronous replication modes of a shard.
const (
	SyncOff    = "off"
	SyncOn     = "on"
	SyncStrict = "strict"
)

// ShardSettings tune the HA behaviour of one shard.
type ShardSettings struct {
	// Synchronous is off, on (degrade to async when no standby is healthy)
	// or strict (block writes rather than degrade).
	Synchronous string `json:"synchronous,omitempty"`
	// MaxLagOnFailover is the most WAL bytes a candidate may be behind the
	// best standby; 0 means the default.
	MaxLagOnFailover int64 `json:"max_lag_on_failover,omitempty"`
	// ReplicationSlots says each standby streams through a physical slot
	// named after it, which every new primary must have.
	ReplicationSlots bool `json:"replication_slots,omitempty"`
	// BackupSchedule is a cron expression (5 fields, or @every 1h, @daily)
	// on which the leader takes a backup; empty for none.
	BackupSchedule string `json:"backup_schedule,omitempty"`
	// BackupRetention is how many backups to keep (0 keeps all).
	BackupRetention int `json:"backup_retention,omitempty"`
	// Parameters are PostgreSQL settings the manager keeps on every node
	// (ALTER SYSTEM, then a reload). Replaced whole on a change, never
	// changed in place: readers share it.
	Parameters map[string]string `json:"parameters,omitempty"`
}

// DefaultMaxLagOnFailover is used when a shard sets none (16 MiB).
const DefaultMaxLagOnFailover = 16 << 20

// SyncMode returns the shard's synchronous mode, off when unset.
func (s *Shard) SyncMode() string {
	if s.Settings.Synchronous == "" {
		return SyncOff
	}
	return s.Settings.Synchronous
}

// MaxLag returns the shard's max_lag_on_failover.
func (s *Shard) MaxLag() int64 {
	if s.Settings.MaxLagOnFailover <= 0 {
		return DefaultMaxLagOnFailover
	}
	return s.Settings.MaxLagOnFailover
}

// Node is one PostgreSQL server registered in a shard.
type Node struct {
	Name     string    `json:"name"`
	Host     string    `json:"host"`
	Port     int       `json:"port"`
	Role     Role      `json:"role"`
	Agent    string    `json:"agent,omitempty"`
	DataDir  string    `json:"data_dir,omitempty"`
	Tags     []string  `json:"tags,omitempty"`
	Priority int       `json:"priority"`
	AddedAt  time.Time `json:"added_at"`
	// ParamsApplied is the shard's ParamsVersion last written to this
	// node.
	ParamsApplied uint64 `json:"params_applied,omitempty"`
	// Maintenance, set by an operator who works on the node's host, takes
	// a standby out of failover, switchover and the synchronous set, and
	// the manager leaves it alone (no rejoin, repoint or parameters);
	// MaintenanceReason says why.
	Maintenance       bool   `json:"maintenance,omitempty"`
	MaintenanceReason string `json:"maintenance_reason,omitempty"`
}

// HasTag reports whether the node carries tag.
func (n *Node) HasTag(tag string) bool {
	for _, t := range n.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// Primary returns the shard's declared primary, or nil.
func (s *Shard) Primary() *Node {
	for _, n := range s.Nodes {
		if n.Role == RolePrimary {
			return n
		}
	}
	return nil
}

// Operation is an asynchronous job (failover, switchover, provisioning...).
// The table exists from the first version so that snapshots carry it; the
// HA pipeline fills it.
type Operation struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Cluster string `json:"cluster,omitempty"`
	Shard   string `json:"shard,omitempty"`
	// Target is the node the operation acts on (the promoted one for a
	// failover or switchover, the rejoining one for a rejoin).
	Target string `json:"target,omitempty"`
	// From is the primary being replaced, when there is one.
	From string `json:"from,omitempty"`
	// Epoch is the shard epoch the operation runs under (the new one for a
	// promotion); agents refuse commands carrying an older one.
	Epoch  uint64 `json:"epoch,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Spec is the kind-specific request (e.g. the nodes to provision).
	Spec  json.RawMessage `json:"spec,omitempty"`
	State string          `json:"state"`
	Steps []OperationStep `json:"steps"`
	// Progress is the percentage done, by steps.
	Progress int `json:"progress"`
	// CancelRequested asks the executor to stop at the next step boundary.
	CancelRequested bool      `json:"cancel_requested,omitempty"`
	Error           string    `json:"error,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// Operation states.
const (
	OpRunning   = "running"
	OpSucceeded = "succeeded"
	OpFailed    = "failed"
	OpCancelled = "cancelled"
)

// Step states.
const (
	StepPending = "pending"
	StepRunning = "running"
	StepDone    = "done"
	StepSkipped = "skipped"
	StepFailed  = "failed"
)

// Finished reports whether the operation has ended.
func (o *Operation) Finished() bool {
	return o.State == OpSucceeded || o.State == OpFailed || o.State == OpCancelled
}

// OperationStep is one idempotent step of an operation.
type OperationStep struct {
	Name   string    `json:"name"`
	State  string    `json:"state"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// Event is one entry of the history: a topology change, a failover, a state
// change. IDs increase strictly.
type Event struct {
	ID      uint64    `json:"id"`
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"`
	Cluster string    `json:"cluster,omitempty"`
	Shard   string    `json:"shard,omitempty"`
	Node    string    `json:"node,omitempty"`
	Message string    `json:"message"`
}

// Backup is a verified base backup kept by a node's agent.
type Backup struct {
	ID        string        `json:"id"`
	Cluster   string        `json:"cluster"`
	Shard     string        `json:"shard"`
	Node      string        `json:"node"`
	Agent     string        `json:"agent"`
	Path      string        `json:"path"`
	SizeBytes int64         `json:"size_bytes"`
	StartLSN  string        `json:"start_lsn"`
	StopLSN   string        `json:"stop_lsn"`
	Timeline  uint32        `json:"timeline"`
	Duration  time.Duration `json:"duration"`
	Verified  bool          `json:"verified"`
	CreatedAt time.Time     `json:"created_at"`
}
