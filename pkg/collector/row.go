package collector

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Type OIDs of the probe's columns, as PostgreSQL names them.
const (
	oidBool        = 16
	oidName        = 19
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidJSON        = 114
	oidBPChar      = 1042
	oidVarchar     = 1043
	oidTimestamptz = 1184
	oidNameArray   = 1003
	oidTextArray   = 1009
	oidVarchArray  = 1015
)

// probeColumns is how many columns probeQuery returns.
const probeColumns = 25

// row reads the probe's one row, sent in binary, column after column.
// oids are the columns' types and vals their values (nil: NULL). The
// first error sticks and names its column.
type row struct {
	oids []uint32
	vals [][]byte
	i    int
	err  error
}

// next returns the next column's value, after checking that its type is
// one of want; null says whether NULL is allowed.
func (r *row) next(kind string, null bool, want ...uint32) []byte {
	i := r.i
	r.i++
	if r.err != nil {
		return nil
	}
	if i >= len(r.vals) || i >= len(r.oids) {
		r.err = fmt.Errorf("the row has %d columns, not %d", len(r.vals), probeColumns)
		return nil
	}
	ok := false
	for _, w := range want {
		ok = ok || r.oids[i] == w
	}
	switch {
	case !ok:
		r.err = fmt.Errorf("column %d: want %s, the server sent type %d", i+1, kind, r.oids[i])
	case r.vals[i] == nil && !null:
		r.err = fmt.Errorf("column %d: want %s, the server sent NULL", i+1, kind)
	}
	return r.vals[i]
}

func (r *row) fail(kind string, v []byte) {
	if r.err == nil {
		r.err = fmt.Errorf("column %d: %d bytes are not a binary %s", r.i, len(v), kind)
	}
}

func (r *row) bool() bool {
	v := r.next("a boolean", false, oidBool)
	if r.err == nil && len(v) != 1 {
		r.fail("boolean", v)
	}
	return r.err == nil && v[0] != 0
}

func (r *row) str() string { return string(r.raw()) }

// raw is a text column's bytes, valid while the row is.
func (r *row) raw() []byte {
	return r.next("text", false, oidText, oidVarchar, oidName, oidBPChar, oidJSON)
}

// nullStr is nil for NULL.
func (r *row) nullStr() *string {
	v := r.next("text", true, oidText, oidVarchar, oidName, oidBPChar, oidJSON)
	if v == nil || r.err != nil {
		return nil
	}
	s := string(v)
	return &s
}

func (r *row) int() int64 {
	v := r.next("an integer", false, oidInt2, oidInt4, oidInt8)
	if r.err != nil {
		return 0
	}
	switch {
	case len(v) == 2 && r.oids[r.i-1] == oidInt2:
		return int64(int16(binary.BigEndian.Uint16(v)))
	case len(v) == 4 && r.oids[r.i-1] == oidInt4:
		return int64(int32(binary.BigEndian.Uint32(v)))
	case len(v) == 8 && r.oids[r.i-1] == oidInt8:
		return int64(binary.BigEndian.Uint64(v))
	}
	r.fail("integer", v)
	return 0
}

// pgEpoch is where PostgreSQL's binary timestamps count from, in
// microseconds from the Unix epoch.
const pgEpochMicros = 946684800 * 1000000

func (r *row) time() time.Time {
	v := r.next("a timestamp with time zone", false, oidTimestamptz)
	if r.err != nil {
		return time.Time{}
	}
	if len(v) != 8 {
		r.fail("timestamptz", v)
		return time.Time{}
	}
	us := int64(binary.BigEndian.Uint64(v))
	if us == math.MaxInt64 || us == math.MinInt64 {
		r.err = fmt.Errorf("column %d: an infinite timestamp", r.i)
		return time.Time{}
	}
	us += pgEpochMicros
	return time.Unix(us/1000000, us%1000000*1000)
}

// strs reads a one-dimensional array of text without NULLs; nil when
// empty.
func (r *row) strs() []string {
	v := r.next("an array of text", false, oidTextArray, oidVarchArray, oidNameArray)
	if r.err != nil {
		return nil
	}
	// ndim, has-nulls flag, element type; per dimension its length and
	// lower bound; then each element's length and bytes.
	if len(v) < 12 {
		r.fail("array", v)
		return nil
	}
	ndim := binary.BigEndian.Uint32(v)
	if ndim == 0 {
		return nil
	}
	if ndim != 1 || len(v) < 20 {
		r.err = fmt.Errorf("column %d: an array of %d dimensions", r.i, ndim)
		return nil
	}
	n := int(int32(binary.BigEndian.Uint32(v[12:])))
	v = v[20:]
	if n < 0 || n > len(v)/4 {
		r.fail("array", v)
		return nil
	}
	out := make([]string, 0, n)
	for range n {
		if len(v) < 4 {
			r.fail("array", v)
			return nil
		}
		l := int(int32(binary.BigEndian.Uint32(v)))
		if l < 0 {
			r.err = fmt.Errorf("column %d: a NULL in the array", r.i)
			return nil
		}
		if l > len(v)-4 {
			r.fail("array", v)
			return nil
		}
		out = append(out, string(v[4:4+l]))
		v = v[4+l:]
	}
	return out
}

// sample makes a sample of the probe's row, read at now.
func (r *row) sample(now time.Time) (*Sample, error) {
	if len(r.vals) != probeColumns {
		return nil, fmt.Errorf("read status: the row has %d columns, not %d", len(r.vals), probeColumns)
	}
	s := &Sample{At: now}
	s.InRecovery = r.bool()
	cur, walfile, recv, replay := r.raw(), r.raw(), r.raw(), r.raw()
	cpTimeline := r.int()
	s.SyncStandbyNames = r.str()
	s.Connections, s.MaxConnections = int(r.int()), int(r.int())
	receiving, rcvStatus := r.bool(), r.nullStr()
	rcv := Receiver{SenderHost: r.str(), SenderPort: int(r.int()), LastMsg: r.time()}
	rcvTimeline := r.int()
	replication := r.raw()
	s.PendingRestart, s.Slots = r.strs(), r.strs()
	archiving := r.bool()
	a := Archiver{ArchivedCount: r.int(), FailedCount: r.int(), LastFailedWAL: r.str(), LastFailed: r.time(), LastArchived: r.time()}
	history := r.nullStr()
	if r.err != nil {
		return nil, fmt.Errorf("read status: %w", r.err)
	}

	var err error
	if s.CurrentLSN, err = parseLSN(cur); err != nil {
		return nil, err
	}
	if s.ReceiveLSN, err = parseLSN(recv); err != nil {
		return nil, err
	}
	if s.ReplayLSN, err = parseLSN(replay); err != nil {
		return nil, err
	}
	s.Timeline, s.TimelineFrom = uint32(cpTimeline), TimelineFromCheckpoint
	if len(walfile) >= 8 {
		// The WAL file name starts with the current timeline in hex; the
		// checkpoint's timeline lags behind a promotion.
		if tl, ok := parseHex(walfile[:8]); ok {
			s.Timeline, s.TimelineFrom = uint32(tl), TimelineFromWALFile
		}
	}
	if receiving {
		if rcvStatus == nil {
			// Without pg_read_all_stats, PostgreSQL shows only the pid.
			return nil, fmt.Errorf("read wal receiver: its status is hidden from this user (it needs pg_read_all_stats, as pg_monitor has)")
		}
		rcv.Status, rcv.Timeline = *rcvStatus, uint32(rcvTimeline)
		s.Receiver = &rcv
	}
	if s.InRecovery && s.Receiver != nil && s.Receiver.Status == "streaming" && s.Receiver.Timeline >= s.Timeline {
		s.Timeline, s.TimelineFrom = s.Receiver.Timeline, TimelineFromReceiver
	}

	if string(replication) != "[]" { // a standby's, and a primary's without standbys
		var rows []replicationRow
		if err := json.Unmarshal(replication, &rows); err != nil {
			return nil, fmt.Errorf("read replication: %w", err)
		}
		for _, row := range rows {
			rep := Replica{AppName: row.AppName, State: row.State, SyncState: row.SyncState, ReplayLag: time.Duration(row.ReplayLag * float64(time.Second))}
			rep.FlushLSN, _ = ParseLSN(row.Flush)
			rep.ReplayLSN, _ = ParseLSN(row.Replay)
			s.Replicas = append(s.Replicas, rep)
		}
	}
	if archiving {
		s.Archiver = &a
	}
	if history != nil && *history != "" && !s.InRecovery {
		// A file PostgreSQL wrote does not fail to parse; if one did, the
		// primary's history would just be unknown.
		if files, err := HistoryFiles(s.Timeline, *history); err == nil {
			s.HistoryFiles = files
			s.History, _ = ParseHistory(*history)
		}
	}
	return s, nil
}

// parseLSN is ParseLSN of a column's bytes, without a string.
func parseLSN(b []byte) (LSN, error) {
	if len(b) == 0 {
		return 0, nil
	}
	i := bytes.IndexByte(b, '/')
	hi, okHi := parseHex(b[:max(i, 0)])
	lo, okLo := parseHex(b[i+1:])
	if i < 0 || !okHi || !okLo || hi > 0xffffffff || lo > 0xffffffff {
		return ParseLSN(string(b)) // its error says what is wrong
	}
	return LSN(hi<<32 | lo), nil
}

// parseHex parses 1 to 16 hex digits.
func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(c)
	}
	return v, true
}
