package collector

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// LSN is a WAL position.
type LSN uint64

// ParseLSN parses "X/Y" (hex); "" is 0.
func ParseLSN(s string) (LSN, error) {
	if s == "" {
		return 0, nil
	}
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("LSN %q is not X/Y", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("LSN %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("LSN %q: %w", s, err)
	}
	return LSN(h<<32 | l), nil
}

func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&0xffffffff) }

// Receiver is a standby's WAL receiver.
type Receiver struct {
	Status     string    `json:"status"` // streaming, waiting, ...
	SenderHost string    `json:"sender_host"`
	SenderPort int       `json:"sender_port"`
	LastMsg    time.Time `json:"last_msg_receipt_time"`
	Timeline   uint32    `json:"received_tli"`
}

// Replica is one row of a primary's pg_stat_replication.
type Replica struct {
	AppName   string `json:"application_name"`
	State     string `json:"state"`
	SyncState string `json:"sync_state"`
	FlushLSN  LSN    `json:"flush_lsn"`
	ReplayLSN LSN    `json:"replay_lsn"`
	// ReplayLag is how long ago the WAL the standby replayed last was
	// flushed on the primary (pg_stat_replication.replay_lag; 0 when
	// PostgreSQL shows none: caught up and idle).
	ReplayLag time.Duration `json:"replay_lag,omitempty"`
}

// Sample is one reading of a node.
type Sample struct {
	At               time.Time `json:"at"`
	InRecovery       bool      `json:"in_recovery"`
	Timeline         uint32    `json:"timeline"`
	TimelineFrom     string    `json:"timeline_from"`            // one of the TimelineFrom constants
	TimelineError    string    `json:"timeline_error,omitempty"` // why the replay timeline could not be read
	CurrentLSN       LSN       `json:"current_lsn"`              // primary
	ReceiveLSN       LSN       `json:"receive_lsn"`              // standby
	ReplayLSN        LSN       `json:"replay_lsn"`               // standby
	Receiver         *Receiver `json:"wal_receiver"`             // standby, nil when none runs
	Replicas         []Replica `json:"replication"`              // primary
	SyncStandbyNames string    `json:"synchronous_standby_names"`
	Connections      int       `json:"connections"`
	MaxConnections   int       `json:"max_connections"`
	PendingRestart   []string  `json:"pending_restart,omitempty"`
	Archiver         *Archiver `json:"archiver,omitempty"` // when archive_mode is not off
	Slots            []string  `json:"slots,omitempty"`
	// HistoryFiles are a primary's timeline history files by name (its
	// own and its ancestors'), when the manager's user may read them;
	// History is its own, parsed.
	HistoryFiles map[string]string `json:"history_files,omitempty"`
	History      []TimelineSwitch  `json:"history,omitempty"`
}

// LSN returns the node's WAL position: current on a primary, received (or
// replayed, if further) on a standby.
func (s *Sample) LSN() LSN {
	if !s.InRecovery {
		return s.CurrentLSN
	}
	return max(s.ReceiveLSN, s.ReplayLSN)
}

// Archiver is a node's pg_stat_archiver.
type Archiver struct {
	ArchivedCount int64     `json:"archived_count"`
	FailedCount   int64     `json:"failed_count"`
	LastFailedWAL string    `json:"last_failed_wal,omitempty"`
	LastFailed    time.Time `json:"last_failed_time"`
	LastArchived  time.Time `json:"last_archived_time"`
}

// Failing reports whether the last archive attempt failed: WAL is piling
// up unarchived and point-in-time restore past it is impossible.
func (a *Archiver) Failing() bool { return a != nil && a.LastFailed.After(a.LastArchived) }

// probeQuery reads all of a sample in one statement, so that a probe
// costs the server one statement and the manager one row to decode: at a
// probe a second of every node of a fleet, that is most of the manager's
// work. The WAL receiver is a left join (no row: none runs). The
// pg_stat_replication rows are one JSON array, built in one pass over the
// view so that their fields stay together, of physical walsenders only
// (a logical one is connected to a database; a subscription named like a
// node must not count as that standby). A standby's pg_stat_archiver and
// pending settings read the same as a primary's.
// The timeline history read sits in a CASE branch, which runs only when
// taken (historyColumn).
const probeQuery = `SELECT pg_is_in_recovery(),
  CASE WHEN pg_is_in_recovery() THEN '' ELSE pg_current_wal_lsn()::text END,
  CASE WHEN pg_is_in_recovery() THEN '' ELSE pg_walfile_name(pg_current_wal_lsn()) END,
  COALESCE(pg_last_wal_receive_lsn()::text, ''),
  COALESCE(pg_last_wal_replay_lsn()::text, ''),
  (SELECT timeline_id FROM pg_control_checkpoint()),
  current_setting('synchronous_standby_names'),
  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
  current_setting('max_connections')::int,
  w.pid IS NOT NULL, w.status, COALESCE(w.sender_host, ''), COALESCE(w.sender_port, 0),
  COALESCE(w.last_msg_receipt_time, 'epoch'::timestamptz), COALESCE(w.received_tli, 0),
  COALESCE((SELECT json_agg(json_build_object('application_name', application_name, 'state', COALESCE(state, ''),
      'sync_state', COALESCE(sync_state, ''), 'flush_lsn', COALESCE(flush_lsn::text, ''), 'replay_lsn', COALESCE(replay_lsn::text, ''),
      'replay_lag', COALESCE(EXTRACT(epoch FROM replay_lag), 0)::float8) ORDER BY application_name)
    FROM pg_stat_replication r
    WHERE NOT EXISTS (SELECT FROM pg_stat_activity l WHERE l.pid = r.pid AND l.datid IS NOT NULL))::text, '[]'),
  ARRAY(SELECT name FROM pg_settings WHERE pending_restart ORDER BY name),
  ARRAY(SELECT s.slot_name::text FROM pg_replication_slots s ORDER BY s.slot_name),
  current_setting('archive_mode') <> 'off', a.archived_count, a.failed_count, COALESCE(a.last_failed_wal, ''),
  COALESCE(a.last_failed_time, 'epoch'::timestamptz), COALESCE(a.last_archived_time, 'epoch'::timestamptz),
  ` + historyColumn + `
FROM pg_stat_archiver a LEFT JOIN pg_stat_wal_receiver w ON true`

// ProbeQuery is the statement Collect sends: the fleet simulator answers
// exactly this.
func ProbeQuery() string { return probeQuery }

// replicationRow is one pg_stat_replication row as probeQuery sends it.
type replicationRow struct {
	AppName   string  `json:"application_name"`
	State     string  `json:"state"`
	SyncState string  `json:"sync_state"`
	Flush     string  `json:"flush_lsn"`
	Replay    string  `json:"replay_lsn"`
	ReplayLag float64 `json:"replay_lag"`
}

// Collect reads a sample from conn in one round trip.
func Collect(ctx context.Context, conn *pgx.Conn, now time.Time) (*Sample, error) {
	rr := conn.PgConn().ExecParams(ctx, probeQuery, nil, nil, nil, []int16{1})
	var s *Sample
	var err error
	rows := 0
	for rr.NextRow() {
		rows++
		if rows > 1 {
			continue
		}
		fds := rr.FieldDescriptions()
		oids := make([]uint32, len(fds))
		for i, f := range fds {
			oids[i] = f.DataTypeOID
		}
		r := row{oids: oids, vals: rr.Values()}
		s, err = r.sample(now)
	}
	if _, cerr := rr.Close(); cerr != nil {
		return nil, fmt.Errorf("read status: %w", cerr)
	}
	if rows != 1 {
		return nil, fmt.Errorf("read status: %d rows, not one", rows)
	}
	return s, err
}
