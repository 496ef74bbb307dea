package collector

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// historyColumn reads a primary's own timeline history file (pg_wal/<its
// timeline>.history) where the manager's user may: superusers, or users
// granted EXECUTE on pg_read_file. NULL on a standby, on timeline 1 (no
// such file) or without the privilege (the read sits in a CASE branch,
// which runs only when taken). One file, no directory listing: it runs at
// every probe of every primary.
const historyColumn = `CASE WHEN NOT pg_is_in_recovery()
    AND has_function_privilege('pg_read_file(text, bigint, bigint, boolean)', 'EXECUTE')
  THEN pg_read_file('pg_wal/' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) || '.history', 0, 65536, true)
  END`

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

// HistoryFiles returns the history files of timeline tl and of its
// ancestors from text, tl's own history file: PostgreSQL writes a
// timeline's file as its parent's plus one line, so each ancestor's is a
// leading part of it.
func HistoryFiles(tl uint32, text string) (map[string]string, error) {
	h, err := ParseHistory(text)
	if err != nil {
		return nil, err
	}
	if len(h) == 0 {
		return nil, nil
	}
	var lines []string
	for _, line := range strings.Split(text, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, line)
		}
	}
	files := map[string]string{HistoryFileName(tl): text}
	// The timeline after h[i] is h[i+1].Timeline (tl after the last):
	// its file holds lines 0..i.
	for i := 0; i+1 < len(h); i++ {
		files[HistoryFileName(h[i+1].Timeline)] = strings.Join(lines[:i+1], "\n") + "\n"
	}
	return files, nil
}

// OnHistory reports whether a server at lsn on timeline tl stands exactly
// where the history h of a later timeline switched away from tl: it then
// holds all of tl that h has, and nothing else. (A server before the
// switch is on the history too, but PostgreSQL, told of the later
// timeline while in recovery, may adopt it and write a history that ends
// that timeline before it began; so only the switch point itself counts.)
func OnHistory(h []TimelineSwitch, tl uint32, lsn LSN) bool {
	for _, s := range h {
		if s.Timeline == tl {
			return lsn == s.Switch
		}
	}
	return false
}
