package pgconf

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Error names the parameter a check refused.
type Error struct {
	Key string
	Msg string
}

func (e *Error) Error() string { return e.Key + ": " + e.Msg }

// nameRE is a parameter name: a GUC, or an extension's class.name.
var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

// MaxValueBytes bounds a parameter's value.
const MaxValueBytes = 4096

// Owned says why the manager refuses a parameter an operator sets, or "".
func Owned(name string) string {
	n := strings.ToLower(name)
	switch n {
	case "archive_command", "archive_library", "archive_mode", "restore_command", "archive_cleanup_command", "recovery_end_command":
		return "the manager runs WAL archiving and restore itself"
	case "primary_conninfo", "primary_slot_name", "promote_trigger_file", "hot_standby", "recovery_min_apply_delay":
		return "the manager sets replication and recovery itself"
	case "synchronous_standby_names":
		return "the manager sets the synchronous standbys itself (the shard's synchronous mode)"
	case "port", "listen_addresses", "unix_socket_directories", "unix_socket_permissions", "unix_socket_group":
		return "the node's address and socket are the manager's (its host and port)"
	case "data_directory", "config_file", "hba_file", "ident_file", "external_pid_file":
		return "file locations are the manager's"
	case "ssl_cert_file", "ssl_key_file", "ssl_ca_file", "ssl_crl_file", "ssl_crl_dir", "ssl_passphrase_command", "ssl_passphrase_command_supports_reload":
		return "TLS files are the manager's"
	case "shared_preload_libraries", "session_preload_libraries", "local_preload_libraries", "dynamic_library_path", "jit_provider":
		return "loading libraries runs code on the host"
	case "log_directory", "log_filename", "logging_collector", "log_file_mode":
		return "log files are the host's"
	case "wal_log_hints":
		return "pg_rewind needs it on"
	}
	if strings.HasPrefix(n, "recovery_target") {
		return "recovery targets are set by a restore"
	}
	return ""
}

// Validate checks parameters an operator gives for a node: names of the
// right shape, none the manager owns, values without control characters
// and at most MaxValueBytes long. Keys are checked in sorted order, so the
// first refusal is the same every time.
func Validate(params map[string]string) error {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if len(k) > 63 || !nameRE.MatchString(k) {
			return &Error{Key: quoteKey(k), Msg: "is not a parameter name"}
		}
		if why := Owned(k); why != "" {
			return &Error{Key: k, Msg: "cannot be set: " + why}
		}
		v := params[k]
		if strings.EqualFold(k, "wal_level") && strings.EqualFold(strings.TrimSpace(v), "minimal") {
			return &Error{Key: k, Msg: "minimal cannot be set: standbys need replica or logical"}
		}
		if len(v) > MaxValueBytes {
			return &Error{Key: k, Msg: fmt.Sprintf("value is %d bytes long; the limit is %d", len(v), MaxValueBytes)}
		}
		for _, r := range v {
			if r < 0x20 || r == 0x7f {
				return &Error{Key: k, Msg: fmt.Sprintf("value holds the control character %U", r)}
			}
		}
	}
	return nil
}

// quoteKey shows a refused key safely (no control characters, bounded).
func quoteKey(k string) string {
	if len(k) > 63 {
		k = k[:63] + "…"
	}
	return fmt.Sprintf("%q", k)
}
