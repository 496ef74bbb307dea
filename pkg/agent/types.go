package agent

import "github.com/clustermgr/clustermgr/pkg/pgctl"

// Request is the body of every agent command.
type Request struct {
	DataDir string `json:"data_dir"`
	// Epoch is the shard epoch the command belongs to; required for every
	// command but status.
	Epoch uint64 `json:"epoch"`
	// Term is the Raft term of the manager leader that sends the command:
	// with Epoch, the command's fencing token (pkg/fencing). Client sets
	// it from the context.
	Term uint64 `json:"term,omitempty"`
	// Mode of stop and restart: fast, immediate, or kill (SIGKILL of the
	// whole server process group: a fence that works on a hung server).
	Mode string `json:"mode,omitempty"`
	// UntilCheckpoint, on a fast stop: answer as soon as the control file
	// records the shutdown checkpoint, while the postmaster may still be
	// finishing (walsenders, the archiver). The server takes no write
	// after that checkpoint.
	UntilCheckpoint bool `json:"until_checkpoint,omitempty"`
	// Source is the libpq connection string of the new primary (rewind),
	// also written as primary_conninfo.
	Source string `json:"source,omitempty"`
	// History are timeline history files (name → contents) to put in the
	// server's pg_wal before it is promoted from an earlier timeline than
	// the last primary's: its new timeline is then past those, not a
	// second timeline of the same number.
	History map[string]string `json:"history,omitempty"`
	// PrimaryConnInfo and PrimarySlotName configure a standby.
	PrimaryConnInfo string `json:"primary_conninfo,omitempty"`
	PrimarySlotName string `json:"primary_slot_name,omitempty"`

	// Initdb and basebackup: the server's port, its settings
	// (postgresql.auto.conf), and for initdb the superuser, its password
	// and the hosts allowed to connect and replicate.
	Port       int               `json:"port,omitempty"`
	Parameters map[string]string `json:"parameters,omitempty"`
	Superuser  string            `json:"superuser,omitempty"`
	Password   string            `json:"password,omitempty"`
	AllowHosts []string          `json:"allow_hosts,omitempty"`
	// Listen is the server's listen_addresses (initdb, basebackup,
	// restore): the node's own host, never every interface.
	Listen string `json:"listen_addresses,omitempty"`
	// AppName is the application_name a new standby streams under.
	AppName string `json:"app_name,omitempty"`
	// BackupID names a backup (its directory under the agent's backups).
	BackupID string `json:"backup_id,omitempty"`
	// Archive names the WAL archive of a shard (a directory under the
	// agent's archive): initdb and basebackup archive into it, restore
	// reads from it.
	Archive string `json:"archive,omitempty"`
	// LeaseMillis is the length of a primary lease (lease), counted from
	// LeaseFromMillis (the manager's clock when it sent the renewal, Unix
	// milliseconds; the agent's receipt when absent). Once it runs out the
	// server must have a standby acknowledge WAL written after that within
	// ReplyWithinMillis (capped at maxAckWait) to keep serving.
	LeaseMillis       int64 `json:"lease_ms,omitempty"`
	LeaseFromMillis   int64 `json:"lease_from_ms,omitempty"`
	ReplyWithinMillis int64 `json:"reply_within_ms,omitempty"`
	// Standbys are the application names of the shard's standbys: only
	// their acknowledgements keep a primary whose lease ran out serving
	// (not a logical subscriber's, nor a base backup's WAL stream). When
	// empty, any physical walsender counts.
	Standbys []string `json:"standbys,omitempty"`
	// AcksNeeded is how many of them must acknowledge (ServingAcks of
	// the shard: with the primary, a majority of its nodes; 0 for a
	// primary alone); 1 when absent. At most len(Standbys) when they are
	// named.
	AcksNeeded *int `json:"acks_needed,omitempty"`
	// Node is the node's cluster.shard.node name (role, lease): the
	// name its health checks answer to.
	Node string `json:"node,omitempty"`
	// Role is what the leader declares the node: primary or standby
	// (role); Sync marks a synchronous standby, Maintenance one an
	// operator took out of service.
	Role        string `json:"role,omitempty"`
	Sync        bool   `json:"sync,omitempty"`
	Maintenance bool   `json:"maintenance,omitempty"`
	// TargetTime is the recovery target of a restore (RFC 3339; empty: the
	// end of the archive).
	TargetTime string `json:"target_time,omitempty"`
}

// Status is the state of a data directory.
type Status struct {
	DataDir string            `json:"data_dir"`
	Running bool              `json:"running"`
	PID     int               `json:"pid,omitempty"`
	Standby bool              `json:"standby"` // standby.signal present
	Control pgctl.ControlData `json:"control"`
	// ControlError says why the control data could not be read.
	ControlError string `json:"control_error,omitempty"`
	EpochSeen    uint64 `json:"epoch_seen"`
	TermSeen     uint64 `json:"term_seen,omitempty"`
}

// Result is the answer of a mutating command.
type Result struct {
	Status Status `json:"status"`
	Output string `json:"output,omitempty"`
}
