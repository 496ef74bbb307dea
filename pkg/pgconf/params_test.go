package pgconf

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		params map[string]string
		key    string // "" when accepted
		msg    string
	}{
		{map[string]string{"work_mem": "64MB", "max_connections": "200", "pg_stat_statements.max": "1000", "search_path": `"$user", public`}, "", ""},
		{map[string]string{"archive_command": "rm -rf /"}, "archive_command", "WAL archiving"},
		{map[string]string{"Archive_Command": "x"}, "Archive_Command", "WAL archiving"},
		{map[string]string{"shared_preload_libraries": "evil"}, "shared_preload_libraries", "runs code"},
		{map[string]string{"recovery_target_time": "x"}, "recovery_target_time", "restore"},
		{map[string]string{"port": "1"}, "port", "address"},
		{map[string]string{"wal_level": "minimal"}, "wal_level", "standbys need"},
		{map[string]string{"wal_level": "logical"}, "", ""},
		{map[string]string{"work_mem": "1MB\narchive_command = 'x'"}, "work_mem", "control character"},
		{map[string]string{"x\narchive_command": "y"}, `"x\narchive_command"`, "not a parameter name"},
		{map[string]string{"a=b": "1"}, `"a=b"`, "not a parameter name"},
		{map[string]string{"work_mem": strings.Repeat("9", 5000)}, "work_mem", "limit"},
	} {
		err := Validate(tc.params)
		if tc.key == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.params, err)
			}
			continue
		}
		e, ok := err.(*Error)
		if !ok || e.Key != tc.key || !strings.Contains(e.Msg, tc.msg) {
			t.Errorf("%q: %v, want key %s and %q", tc.params, err, tc.key, tc.msg)
		}
	}
}
