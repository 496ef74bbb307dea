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

const statusQuery = `SELECT pg_is_in_recovery(),
  CASE WHEN pg_is_in_recovery() THEN '' ELSE pg_current_wal_lsn()::text END,
  CASE WHEN pg_is_in_recovery() THEN '' ELSE pg_walfile_name(pg_current_wal_lsn()) END,
  COALESCE(pg_last_wal_receive_lsn()::text, ''),
  COALESCE(pg_last_wal_replay_lsn()::text, ''),
  (SELECT timeline_id FROM pg_control_checkpoint()),
  current_setting('synchronous_standby_names'),
  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
  current_setting('max_connections')::int`

const receiverQuery = `SELECT status, COALESCE(sender_host, ''), COALESCE(sender_port, 0),
  COALESCE(last_msg_receipt_time, 'epoch'::timestamptz), COALESCE(received_tli, 0) FROM pg_stat_wal_receiver`

const replicationQuery = `SELECT application_name, COALESCE(state, ''), COALESCE(sync_state, ''),
  COALESCE(flush_lsn::text, ''), COALESCE(replay_lsn::text, ''), COALESCE(EXTRACT(epoch FROM replay_lag), 0)::float8
  FROM pg_stat_replication ORDER BY application_name`

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

const archiverQuery = `SELECT current_setting('archive_mode') <> 'off', archived_count, failed_count, COALESCE(last_failed_wal, ''),
  COALESCE(last_failed_time, 'epoch'::timestamptz), COALESCE(last_archived_time, 'epoch'::timestamptz) FROM pg_stat_archiver`

const pendingQuery = `SELECT name FROM pg_settings WHERE pending_restart ORDER BY name`

const slotsQuery = `SELECT slot_name FROM pg_replication_slots ORDER BY slot_name`

// ProbeQueries are the statements Collect sends, in its order: the fleet
// simulator answers exactly these.
func ProbeQueries() []string {
	return []string{statusQuery, receiverQuery, replicationQuery, pendingQuery, slotsQuery, archiverQuery, historyQuery}
}

// Collect reads a sample from conn in one round trip.
func Collect(ctx context.Context, conn *pgx.Conn, now time.Time) (*Sample, error) {
	b := &pgx.Batch{}
	for _, q := range ProbeQueries() {
		b.Queue(q)
	}
	br := conn.SendBatch(ctx, b)
	defer br.Close()

	s := &Sample{At: now}
	var cur, walfile, recv, replay string
	var cpTimeline int64
	if err := br.QueryRow().Scan(&s.InRecovery, &cur, &walfile, &recv, &replay, &cpTimeline, &s.SyncStandbyNames, &s.Connections, &s.MaxConnections); err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	var err error
	if s.CurrentLSN, err = ParseLSN(cur); err != nil {
		return nil, err
	}
	if s.ReceiveLSN, err = ParseLSN(recv); err != nil {
		return nil, err
	}
	if s.ReplayLSN, err = ParseLSN(replay); err != nil {
		return nil, err
	}
	s.Timeline, s.TimelineFrom = uint32(cpTimeline), TimelineFromCheckpoint
	if len(walfile) >= 8 {
		// The WAL file name starts with the current timeline in hex; the
		// checkpoint's timeline lags behind a promotion.
		if tl, err := strconv.ParseUint(walfile[:8], 16, 32); err == nil {
			s.Timeline, s.TimelineFrom = uint32(tl), TimelineFromWALFile
		}
	}

	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("read wal receiver: %w", err)
	}
	for rows.Next() {
		r := &Receiver{}
		var tli int64
		if err := rows.Scan(&r.Status, &r.SenderHost, &r.SenderPort, &r.LastMsg, &tli); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read wal receiver: %w", err)
		}
		r.Timeline = uint32(tli)
		s.Receiver = r
	}
	rows.Close()
	if s.InRecovery && s.Receiver != nil && s.Receiver.Status == "streaming" && s.Receiver.Timeline >= s.Timeline {
		s.Timeline, s.TimelineFrom = s.Receiver.Timeline, TimelineFromReceiver
	}

	rows, err = br.Query()
	if err != nil {
		return nil, fmt.Errorf("read replication: %w", err)
	}
	for rows.Next() {
		var r Replica
		var flush, rep string
		var lag float64
		if err := rows.Scan(&r.AppName, &r.State, &r.SyncState, &flush, &rep, &lag); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read replication: %w", err)
		}
		r.ReplayLag = time.Duration(lag * float64(time.Second))
		r.FlushLSN, _ = ParseLSN(flush)
		r.ReplayLSN, _ = ParseLSN(rep)
		s.Replicas = append(s.Replicas, r)
	}
	rows.Close()

	for _, dst := range []*[]string{&s.PendingRestart, &s.Slots} {
		rows, err := br.Query()
		if err != nil {
			return nil, fmt.Errorf("read settings: %w", err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return nil, err
			}
			*dst = append(*dst, v)
		}
		rows.Close()
	}
	var on bool
	a := &Archiver{}
	if err := br.QueryRow().Scan(&on, &a.ArchivedCount, &a.FailedCount, &a.LastFailedWAL, &a.LastFailed, &a.LastArchived); err != nil {
		return nil, fmt.Errorf("read archiver: %w", err)
	}
	if on {
		s.Archiver = a
	}
	var history *string
	if err := br.QueryRow().Scan(&history); err != nil {
		return nil, fmt.Errorf("read timeline history: %w", err)
	}
	if history != nil && *history != "" && !s.InRecovery {
		// A file PostgreSQL wrote does not fail to parse; if one did, the
		// primary's history would just be unknown.
		if files, err := HistoryFiles(s.Timeline, *history); err == nil {
			s.HistoryFiles = files
			s.History, _ = ParseHistory(*history)
		}
	}
	return s, br.Close()
}
