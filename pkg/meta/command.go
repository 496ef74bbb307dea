package meta

import (
	"encoding/json"
	"fmt"
	"time"
)

// CommandType is the first byte of every log entry this package writes. The
// values are part of the log format: they are never renumbered or reused.
type CommandType uint8

// IgnoreUnknown is a bit of CommandType. A replica that does not know a type
// carrying this bit skips the entry instead of stopping, which lets a newer
// leader write optional entries during a rolling upgrade.
const IgnoreUnknown CommandType = 0x80

// Command types. Append only.
const (
	CmdSetMember       CommandType = 1
	CmdRemoveMember    CommandType = 2
	CmdCreateCluster   CommandType = 3
	CmdUpdateCluster   CommandType = 4
	CmdDeleteCluster   CommandType = 5
	CmdCreateShard     CommandType = 6
	CmdDeleteShard     CommandType = 7
	CmdAddNode         CommandType = 8
	CmdRemoveNode      CommandType = 9
	CmdPutOperation    CommandType = 10
	CmdSetPrimary      CommandType = 11
	CmdSetSyncSet      CommandType = 12
	CmdUpdateShard     CommandType = 13
	CmdRecordEvent     CommandType = 14
	CmdPutBackup       CommandType = 15
	CmdDeleteBackup    CommandType = 16
	CmdSetPeerSecret   CommandType = 17
	CmdCancelOperation CommandType = 18
	CmdStepOperation   CommandType = 19
	CmdFinishOperation CommandType = 20
	CmdPutToken        CommandType = 21
	CmdRevokeToken     CommandType = 22
	CmdRecordAudit     CommandType = 23
	CmdPutAgent        CommandType = 24
	CmdDeleteAgent     CommandType = 25
	CmdResealSecrets   CommandType = 26
	CmdParamsApplied   CommandType = 27
	CmdSetMaintenance  CommandType = 28
	CmdPutSchedule     CommandType = 29
	CmdSetSchedule     CommandType = 30
	CmdPutWebhook      CommandType = 31
	CmdDeleteWebhook   CommandType = 32
	// CmdWebhookDelivered records no event and changes nothing a reader
	// waits on: replicas of an older version may ignore it.
	CmdWebhookDelivered CommandType = 33 | IgnoreUnknown
	CmdSetLevel         CommandType = 34
)

// Command is a typed state change proposed through Raft.
type Command interface {
	Type() CommandType
	stamp(at time.Time)
}

// Stamp carries the time the leader proposed a command. Apply uses it instead
// of a clock so that every replica records the same times.
type Stamp struct {
	At time.Time `json:"at"`
}

func (s *Stamp) stamp(at time.Time) {
	if s.At.IsZero() {
		s.At = at.UTC()
	}
}

// CancelOperation asks a running operation to stop at its next step
// boundary.
type CancelOperation struct {
	Stamp
	ID string `json:"id"`
}

// Type implements Command.
func (*CancelOperation) Type() CommandType { return CmdCancelOperation }

// StepOperation moves one step of a running operation to a new state
// (running, done, skipped, failed), checked as a transition by the FSM.
// Spec, when set, replaces the operation's spec: what a step learned that
// the next ones need (a rejoin's plan, a shutdown checkpoint).
type StepOperation struct {
	Stamp
	ID       string          `json:"id"`
	Step     int             `json:"step"`
	Name     string          `json:"name"`
	State    string          `json:"state"`
	Detail   string          `json:"detail,omitempty"`
	Progress int             `json:"progress,omitempty"`
	Spec     json.RawMessage `json:"spec,omitempty"`
}

// Type implements Command.
func (*StepOperation) Type() CommandType { return CmdStepOperation }

// FinishOperation ends a running operation: succeeded (every step done or
// skipped), failed or cancelled (a running step fails with the error,
// pending steps are skipped).
type FinishOperation struct {
	Stamp
	ID    string `json:"id"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// Type implements Command.
func (*FinishOperation) Type() CommandType { return CmdFinishOperation }

// ResealSecrets replaces sealed secrets with the same secrets sealed with
// another key (key rotation, or a value kept in clear by an older
// version). Each item replaces its value only while it still holds From,
// so a password changed meanwhile is never put back.
type ResealSecrets struct {
	Stamp
	Key   string       `json:"key"` // id of the key the new values are sealed with
	Items []ResealItem `json:"items"`
}

// ResealItem is one secret: a cluster's password, or, with Cluster "",
// the peer secret.
type ResealItem struct {
	Cluster string `json:"cluster,omitempty"`
	// Webhook names the subscription whose secret this is.
	Webhook string `json:"webhook,omitempty"`
	From    string `json:"from"`
	To      string `json:"to"`
}

// Type implements Command.
func (*ResealSecrets) Type() CommandType { return CmdResealSecrets }

// SetPeerSecret records the secret followers sign their views with. The
// first one recorded stays: the command is idempotent across leaders.
type SetPeerSecret struct {
	Stamp
	Secret string `json:"secret"`
}

// Type implements Command.
func (*SetPeerSecret) Type() CommandType { return CmdSetPeerSecret }

// SetMember records (or updates) a manager replica's addresses.
type SetMember struct {
	Stamp
	Member Member `json:"member"`
}

// RemoveMember forgets a manager replica's record.
type RemoveMember struct {
	Stamp
	ID string `json:"id"`
}

// CreateCluster registers a cluster.
type CreateCluster struct {
	Stamp
	Name     string          `json:"name"`
	Settings ClusterSettings `json:"settings"`
}

// UpdateCluster changes the settings named by non-nil fields.
type UpdateCluster struct {
	Stamp
	Name            string  `json:"name"`
	PGUser          *string `json:"pg_user,omitempty"`
	PGPassword      *string `json:"pg_password,omitempty"`
	ReplicationUser *string `json:"replication_user,omitempty"`
	AutoFailover    *bool   `json:"auto_failover,omitempty"`
}

// DeleteCluster removes a cluster; with Force also its shards.
type DeleteCluster struct {
	Stamp
	Name  string `json:"name"`
	Force bool   `json:"force"`
}

// CreateShard registers a shard with its existing nodes (adopt mode).
type CreateShard struct {
	Stamp
	Cluster  string        `json:"cluster"`
	Name     string        `json:"name"`
	Nodes    []*Node       `json:"nodes"`
	Settings ShardSettings `json:"settings,omitzero"`
}

// DeleteShard unregisters a shard and its nodes.
type DeleteShard struct {
	Stamp
	Cluster string `json:"cluster"`
	Name    string `json:"name"`
}

// AddNode registers a node in a shard.
type AddNode struct {
	Stamp
	Cluster string `json:"cluster"`
	Shard   string `json:"shard"`
	Node    *Node  `json:"node"`
}

// RemoveNode unregisters a node; the primary only with Force.
type RemoveNode struct {
	Stamp
	Cluster string `json:"cluster"`
	Shard   string `json:"shard"`
	Node    string `json:"node"`
	Force   bool   `json:"force"`
}

// PutOperation creates or replaces an operation (its steps and state).
type PutOperation struct {
	Stamp
	Operation Operation `json:"operation"`
}

// SetPrimary records a promotion: Node becomes the shard's primary, every
// other node a standby, and the shard epoch becomes Epoch (which must be
// newer).
type SetPrimary struct {
	Stamp
	Cluster string `json:"cluster"`
	Shard   string `json:"shard"`
	Node    string `json:"node"`
	Epoch   uint64 `json:"epoch"`
	Reason  string `json:"reason"`
	// Timeline is the new primary's timeline once promoted and History
	// its timeline history files (name → contents), when read: a
	// failover soon after knows them even if no probe saw the promotion.
	Timeline uint32            `json:"timeline,omitempty"`
	History  map[string]string `json:"history,omitempty"`
}

// SetSyncSet records the synchronous standby set of a shard.
type SetSyncSet struct {
	Stamp
	Cluster string   `json:"cluster"`
	Shard   string   `json:"shard"`
	Nodes   []string `json:"nodes"`
}

// UpdateShard changes the shard settings named by non-nil fields.
type UpdateShard struct {
	Stamp
	Cluster          string  `json:"cluster"`
	Shard            string  `json:"shard"`
	Synchronous      *string `json:"synchronous,omitempty"`
	MaxLagOnFailover *int64  `json:"max_lag_on_failover,omitempty"`
	BackupSchedule   *string `json:"backup_schedule,omitempty"`
	BackupRetention  *int    `json:"backup_retention,omitempty"`
	// Parameters set PostgreSQL settings on every node; a null value
	// resets one.
	Parameters map[string]*string `json:"parameters,omitempty"`
}

// ParamsApplied records that a node has the shard's parameters of
// Version written (and reloaded).
type ParamsApplied struct {
	Stamp
	Cluster string `json:"cluster"`
	Shard   string `json:"shard"`
	Node    string `json:"node"`
	Version uint64 `json:"version"`
	// Pending names the parameters the node needs a restart for.
	Pending []string `json:"pending,omitempty"`
}

// Type implements Command.
func (*ParamsApplied) Type() CommandType { return CmdParamsApplied }

// SetMaintenance puts a standby in maintenance (On) or takes it out.
type SetMaintenance struct {
	Stamp
	Cluster string `json:"cluster"`
	Shard   string `json:"shard"`
	Node    string `json:"node"`
	On      bool   `json:"on"`
	Reason  string `json:"reason,omitempty"`
}

// Type implements Command.
func (*SetMaintenance) Type() CommandType { return CmdSetMaintenance }

// RecordEvent appends an event to the history (decisions, state changes).
type RecordEvent struct {
	Stamp
	Event Event `json:"event"`
}

// PutBackup records a verified backup.
type PutBackup struct {
	Stamp
	Backup Backup `json:"backup"`
}

// Type implements Command.
func (*PutBackup) Type() CommandType { return CmdPutBackup }

// DeleteBackup forgets a backup (its files are removed by its agent).
type DeleteBackup struct {
	Stamp
	ID string `json:"id"`
}

// Type implements Command.
func (*DeleteBackup) Type() CommandType { return CmdDeleteBackup }

// Type implements Command.
func (*PutOperation) Type() CommandType { return CmdPutOperation }

// Type implements Command.
func (*SetPrimary) Type() CommandType { return CmdSetPrimary }

// Type implements Command.
func (*SetSyncSet) Type() CommandType { return CmdSetSyncSet }

// Type implements Command.
func (*UpdateShard) Type() CommandType { return CmdUpdateShard }

// Type implements Command.
func (*RecordEvent) Type() CommandType { return CmdRecordEvent }

// Type implements Command.
func (*SetMember) Type() CommandType { return CmdSetMember }

// Type implements Command.
func (*RemoveMember) Type() CommandType { return CmdRemoveMember }

// Type implements Command.
func (*CreateCluster) Type() CommandType { return CmdCreateCluster }

// Type implements Command.
func (*UpdateCluster) Type() CommandType { return CmdUpdateCluster }

// Type implements Command.
func (*DeleteCluster) Type() CommandType { return CmdDeleteCluster }

// Type implements Command.
func (*CreateShard) Type() CommandType { return CmdCreateShard }

// Type implements Command.
func (*DeleteShard) Type() CommandType { return CmdDeleteShard }

// Type implements Command.
func (*AddNode) Type() CommandType { return CmdAddNode }

// Type implements Command.
func (*RemoveNode) Type() CommandType { return CmdRemoveNode }

// Encode returns the log entry for cmd: its type byte followed by its JSON.
func Encode(cmd Command) ([]byte, error) {
	body, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("encode command %d: %w", cmd.Type(), err)
	}
	out := make([]byte, 0, len(body)+1)
	out = append(out, byte(cmd.Type()))
	return append(out, body...), nil
}
