package collector

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
)

// Timeline sources, from most to least direct. A standby's checkpoint
// timeline lags behind the timeline it replays until its next
// restartpoint, so it is only the last resort.
const (
	TimelineFromWALFile    = "wal-file"   // a primary's current WAL file
	TimelineFromReplay     = "replay"     // IDENTIFY_SYSTEM on a standby: the timeline it replays
	TimelineFromReceiver   = "receiver"   // pg_stat_wal_receiver.received_tli
	TimelineFromCheckpoint = "checkpoint" // pg_control_checkpoint(): may be stale on a standby
)

// IdentifySystem runs IDENTIFY_SYSTEM on a replication connection. On a
// standby PostgreSQL answers with the timeline it replays and the WAL it
// has flushed (received, when that is on the replayed timeline), also when
// no WAL receiver runs: the fact a failover needs once the primary is gone.
func IdentifySystem(ctx context.Context, conn *pgconn.PgConn) (timeline uint32, flush LSN, err error) {
	res, err := conn.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll()
	if err != nil {
		return 0, 0, fmt.Errorf("IDENTIFY_SYSTEM: %w", err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) < 3 {
		return 0, 0, fmt.Errorf("IDENTIFY_SYSTEM: unexpected answer shape")
	}
	row := res[0].Rows[0]
	tl, err := strconv.ParseUint(string(row[1]), 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("IDENTIFY_SYSTEM timeline %q: %w", row[1], err)
	}
	flush, err = ParseLSN(string(row[2]))
	if err != nil {
		return 0, 0, fmt.Errorf("IDENTIFY_SYSTEM: %w", err)
	}
	return uint32(tl), flush, nil
}

// NeedsReplayTimeline reports whether a sample's timeline came from a
// source that can be stale: a standby without a streaming WAL receiver.
func (s *Sample) NeedsReplayTimeline() bool {
	return s.InRecovery && s.TimelineFrom != TimelineFromReceiver
}
