package collector

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// historyQuery reads a primary's timeline history files (pg_wal/*.history)
// where the manager's user may: superusers, or members of pg_monitor with
// EXECUTE on pg_read_file. Nothing on a standby, on timeline 1, or without
// the privileges (the lateral join runs the listing only when allowed).
const historyQuery = `SELECT w.name, COALESCE(pg_read_file('pg_wal/' || w.name, 0, 65536, true), '')
  FROM (SELECT 1 WHERE NOT pg_is_in_recovery()
          AND has_function_privilege('pg_ls_waldir()', 'EXECUTE')
          AND has_function_privilege('pg_read_file(text, bigint, bigint, boolean)', 'EXECUTE')) g,
       LATERAL pg_ls_waldir() w
  WHERE w.name ~ '^[0-9A-F]{8}\.history$' ORDER BY w.name`

var historyName = regexp.MustCompile(`^[0-9A-F]{8}\.history$`)

// HistoryFileName is the name of timeline tl's history file.
func HistoryFileName(tl uint32) string { return fmt.Sprintf("%08X.history", tl) }

// IsHistoryFileName reports whether name is a timeline history file's.
func IsHistoryFileName(name string) bool { return historyName.MatchString(name) }

// TimelineSwitch is one line of a timeline history: the server left
// Timeline at LSN Switch for the next timeline of its history.
type TimelineSwitch struct {
	Timeline uint32 `json:"timeline"`
	Switch   LSN    `json:"switch"`
}

// ParseHistory reads a timeline history file ("parentTLI<TAB>switchpoint
// <TAB>reason" lines; comments and blank lines skipped).
func ParseHistory(text string) ([]TimelineSwitch, error) {
	var out []TimelineSwitch
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("timeline history line %q: want a timeline and a switch point", line)
		}
		tl, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("timeline history line %q: %w", line, err)
		}
		lsn, err := ParseLSN(f[1])
		if err != nil {
			return nil, fmt.Errorf("timeline history line %q: %w", line, err)
		}
		if len(out) > 0 && (uint32(tl) <= out[len(out)-1].Timeline || lsn < out[len(out)-1].Switch) {
			return nil, fmt.Errorf("timeline history line %q goes back", line)
		}
		out = append(out, TimelineSwitch{Timeline: uint32(tl), Switch: lsn})
	}
	return out, nil
}

// OnHistory reports whether a server at lsn on timeline tl holds only WAL
// of the history h of a later timeline: h switched away from tl at or
// after lsn.
func OnHistory(h []TimelineSwitch, tl uint32, lsn LSN) bool {
	for _, s := range h {
		if s.Timeline == tl {
			return lsn <= s.Switch
		}
	}
	return false
}
