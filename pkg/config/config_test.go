package config

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// examplePath is the example file at the repository root.
const examplePath = "../../cluster_mgr.cnf.example"

// nodeEnv sets the one key without a default, so cases that are not about
// it can leave it out of their file.
func nodeEnv() []string { return []string{"CLUSTERMGR_SERVER_NODE_ID=m1"} }

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cluster_mgr.cnf")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadAndValidate loads body as a file and validates the result.
func loadAndValidate(t *testing.T, body string, env []string) error {
	t.Helper()
	c, err := Load(writeFile(t, body), env, nil)
	if err != nil {
		return err
	}
	return c.Validate()
}

// serverFlags defines the flags of the server command.
func serverFlags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	flags := pflag.NewFlagSet("server", pflag.ContinueOnError)
	for f := range flagKeys() {
		flags.String(f, "", "")
	}
	flags.String("config", "", "")
	if err := flags.Parse(args); err != nil {
		t.Fatal(err)
	}
	return flags
}

func TestDefaults(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "server.node_id is required") {
		t.Fatalf("defaults without node id: %v", err)
	}
	c.Server.NodeID = "m1"
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults with node id: %v", err)
	}
	cases := []struct {
		key       string
		got, want any
	}{
		{"server.data_dir", c.Server.DataDir, "./data"},
		{"server.raft_addr", c.Server.RaftAddr, "127.0.0.1:7001"},
		{"server.api_addr", c.Server.APIAddr, "127.0.0.1:8001"},
		{"server.advertise_api", c.Server.AdvertiseAPI, ""},
		{"server.peers", c.Server.Peers, ""},
		{"server.agent_token", c.Server.AgentToken, ""},
		{"raft.heartbeat_timeout", c.Raft.HeartbeatTimeout, 300 * time.Millisecond},
		{"raft.election_timeout", c.Raft.ElectionTimeout, 300 * time.Millisecond},
		{"raft.leader_lease_timeout", c.Raft.LeaderLeaseTimeout, 300 * time.Millisecond},
		{"raft.commit_timeout", c.Raft.CommitTimeout, 20 * time.Millisecond},
		{"raft.snapshot_interval", c.Raft.SnapshotInterval, 30 * time.Second},
		{"raft.snapshot_threshold", c.Raft.SnapshotThreshold, uint64(8192)},
		{"raft.trailing_logs", c.Raft.TrailingLogs, uint64(10240)},
		{"raft.max_append_entries", c.Raft.MaxAppendEntries, 64},
		{"raft.apply_timeout", c.Raft.ApplyTimeout, 10 * time.Second},
		{"api.max_body_bytes", c.API.MaxBodyBytes, int64(1 << 20)},
		{"api.read_timeout", c.API.ReadTimeout, 10 * time.Second},
		{"api.write_timeout", c.API.WriteTimeout, 30 * time.Second},
		{"api.forward_timeout", c.API.ForwardTimeout, 10 * time.Second},
		{"api.shutdown_timeout", c.API.ShutdownTimeout, 10 * time.Second},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "text"},
	}
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("%s = %v, want %v", tc.key, tc.got, tc.want)
			}
		})
	}
}

func TestExampleFile_LoadsAndValidates(t *testing.T) {
	c, err := Load(examplePath, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// Apart from node_id and peers, the example shows the defaults.
	d := Defaults()
	d.Server.NodeID = c.Server.NodeID
	d.Server.Peers = c.Server.Peers
	if c != d {
		t.Fatalf("example differs from the defaults:\nexample  %+v\ndefaults %+v", c, d)
	}
}

func TestExampleFile_ListsEveryKey(t *testing.T) {
	body, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	section := ""
	present := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		case line != "" && !strings.HasPrefix(line, "#"):
			name, _, _ := strings.Cut(line, "=")
			present[section+"."+strings.TrimSpace(name)] = true
		}
	}
	for _, k := range keys() {
		t.Run(k.name, func(t *testing.T) {
			if !present[k.name] {
				t.Fatalf("%s is missing from %s", k.name, examplePath)
			}
		})
	}
}

func TestValidate_RangesNameKeyAndRange(t *testing.T) {
	cases := []struct {
		section, key  string
		low, high     string // values just outside the range, as TOML
		minOK, maxOK  string // the bounds themselves, which are allowed
		want          string // the range as the error states it
		extraForBound string // other keys a bound needs to be valid
	}{
		{"raft", "heartbeat_timeout", `"49ms"`, `"11s"`, `"50ms"`, `"10s"`, "50ms-10s", "leader_lease_timeout = \"50ms\"\nelection_timeout = \"10s\"\n"},
		{"raft", "election_timeout", `"49ms"`, `"11s"`, `"300ms"`, `"10s"`, "50ms-10s", ""},
		{"raft", "leader_lease_timeout", `"9ms"`, `"11s"`, `"10ms"`, `"10s"`, "10ms-10s", "heartbeat_timeout = \"10s\"\nelection_timeout = \"10s\"\n"},
		{"raft", "commit_timeout", `"999us"`, `"1001ms"`, `"1ms"`, `"1s"`, "1ms-1s", ""},
		{"raft", "snapshot_interval", `"999ms"`, `"25h"`, `"1s"`, `"24h"`, "1s-24h", ""},
		{"raft", "snapshot_threshold", `15`, `10000001`, `16`, `10000000`, "16-10000000", ""},
		{"raft", "trailing_logs", `-1`, `10000001`, `0`, `10000000`, "0-10000000", ""},
		{"raft", "max_append_entries", `0`, `1025`, `1`, `1024`, "1-1024", ""},
		{"raft", "apply_timeout", `"99ms"`, `"301s"`, `"100ms"`, `"5m"`, "100ms-5m", ""},
		{"api", "max_body_bytes", `1023`, `67108865`, `1024`, `67108864`, "1024-67108864", ""},
		{"api", "read_timeout", `"999ms"`, `"601s"`, `"1s"`, `"10m"`, "1s-10m", ""},
		{"api", "write_timeout", `"999ms"`, `"601s"`, `"1s"`, `"10m"`, "1s-10m", ""},
		{"api", "forward_timeout", `"99ms"`, `"301s"`, `"100ms"`, `"5m"`, "100ms-5m", ""},
		{"api", "shutdown_timeout", `"999ms"`, `"301s"`, `"1s"`, `"5m"`, "1s-5m", ""},
	}
	for _, tc := range cases {
		name := tc.section + "." + tc.key
		for _, v := range []string{tc.low, tc.high} {
			t.Run(name+"="+v, func(t *testing.T) {
				err := loadAndValidate(t, "["+tc.section+"]\n"+tc.key+" = "+v+"\n", nodeEnv())
				if err == nil || !strings.Contains(err.Error(), name+" = ") || !strings.Contains(err.Error(), "out of range "+tc.want) {
					t.Fatalf("error %v, want it to name %s and range %s", err, name, tc.want)
				}
			})
		}
		for _, v := range []string{tc.minOK, tc.maxOK} {
			t.Run(name+"="+v+" allowed", func(t *testing.T) {
				if err := loadAndValidate(t, "["+tc.section+"]\n"+tc.extraForBound+tc.key+" = "+v+"\n", nodeEnv()); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func TestValidate_ServerAndLogRules(t *testing.T) {
	cases := []struct {
		name, file, want string // want "" = valid
	}{
		{"node_id missing", "[server]\ndata_dir = \"/d\"", "server.node_id is required"},
		{"node_id upper case", "[server]\nnode_id = \"M1\"", "server.node_id = \"M1\" must be up to 63 characters of [a-z0-9-]"},
		{"node_id too long", "[server]\nnode_id = \"" + strings.Repeat("a", 64) + "\"", "server.node_id"},
		{"node_id 63 chars", "[server]\nnode_id = \"" + strings.Repeat("a", 63) + "\"", ""},
		{"node_id with dash", "[server]\nnode_id = \"mgr-1\"", ""},
		{"data_dir empty", "[server]\nnode_id = \"m1\"\ndata_dir = \"\"", "server.data_dir is required"},
		{"raft_addr no port", "[server]\nnode_id = \"m1\"\nraft_addr = \"nohost\"", "server.raft_addr = \"nohost\" is not host:port (port 1-65535)"},
		{"raft_addr no host", "[server]\nnode_id = \"m1\"\nraft_addr = \":7001\"", "server.raft_addr = \":7001\" is not host:port"},
		{"raft_addr port 0", "[server]\nnode_id = \"m1\"\nraft_addr = \"127.0.0.1:0\"", "server.raft_addr = \"127.0.0.1:0\": port is out of range 1-65535"},
		{"raft_addr wildcard", "[server]\nnode_id = \"m1\"\nraft_addr = \"0.0.0.0:7001\"", "server.raft_addr = \"0.0.0.0:7001\": host must be an address the other replicas can reach"},
		{"raft_addr hostname", "[server]\nnode_id = \"m1\"\nraft_addr = \"mgr1.example:7001\"", ""},
		{"raft_addr ipv6", "[server]\nnode_id = \"m1\"\nraft_addr = \"[::1]:7001\"", ""},
		{"api_addr port too high", "[server]\nnode_id = \"m1\"\napi_addr = \"127.0.0.1:70000\"", "server.api_addr = \"127.0.0.1:70000\": port is out of range 1-65535"},
		{"api_addr signed port", "[server]\nnode_id = \"m1\"\napi_addr = \"127.0.0.1:+80\"", "server.api_addr"},
		{"api_addr wildcard", "[server]\nnode_id = \"m1\"\napi_addr = \"0.0.0.0:8001\"", ""},
		{"advertise_api not http", "[server]\nnode_id = \"m1\"\nadvertise_api = \"ftp://x\"", "server.advertise_api = \"ftp://x\" is not an http:// or https:// URL with a host"},
		{"advertise_api no host", "[server]\nnode_id = \"m1\"\nadvertise_api = \"http://\"", "server.advertise_api"},
		{"advertise_api https", "[server]\nnode_id = \"m1\"\nadvertise_api = \"https://mgr1.example:8443\"", ""},
		{"peers duplicate id", "[server]\nnode_id = \"m1\"\npeers = \"m1=127.0.0.1:1,m1=127.0.0.1:2\"", "server.peers: id \"m1\" appears twice"},
		{"peers duplicate address", "[server]\nnode_id = \"m1\"\npeers = \"m1=127.0.0.1:1,m2=127.0.0.1:1\"", "server.peers: m1 and m2 have the same address 127.0.0.1:1"},
		{"peers no address", "[server]\nnode_id = \"m1\"\npeers = \"m1\"", "server.peers: \"m1\" is not id=host:port"},
		{"peers bad id", "[server]\nnode_id = \"m1\"\npeers = \"M1=127.0.0.1:1\"", "server.peers: \"M1=127.0.0.1:1\" is not id=host:port"},
		{"peers trailing comma", "[server]\nnode_id = \"m1\"\npeers = \"m1=127.0.0.1:1,\"", "server.peers"},
		{"peers bad port", "[server]\nnode_id = \"m1\"\npeers = \"m1=127.0.0.1:0\"", "server.peers (m1) = \"127.0.0.1:0\": port is out of range 1-65535"},
		{"peers wildcard", "[server]\nnode_id = \"m1\"\npeers = \"m1=0.0.0.0:7001\"", "server.peers (m1)"},
		{"peers with spaces", "[server]\nnode_id = \"m1\"\npeers = \"m1=127.0.0.1:7001, m2=127.0.0.1:7002\"", ""},
		{"agent_token short", "[server]\nnode_id = \"m1\"\nagent_token = \"short\"", "server.agent_token must be at least 16 characters when set (it has 5)"},
		{"agent_token 16 chars", "[server]\nnode_id = \"m1\"\nagent_token = \"0123456789abcdef\"", ""},
		{"log level", "[server]\nnode_id = \"m1\"\n[log]\nlevel = \"loud\"", "log.level = \"loud\" is not one of debug, info, warn, error"},
		{"log format", "[server]\nnode_id = \"m1\"\n[log]\nformat = \"xml\"", "log.format = \"xml\" is not one of text, json"},
		{"log json debug", "[server]\nnode_id = \"m1\"\n[log]\nformat = \"json\"\nlevel = \"debug\"", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := loadAndValidate(t, tc.file, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValidate_RaftTimingRules(t *testing.T) {
	cases := []struct {
		name, raft, want string // want "" = valid
	}{
		{"lease above heartbeat", "leader_lease_timeout = \"500ms\"", "raft.leader_lease_timeout = 500ms must not exceed raft.heartbeat_timeout = 300ms"},
		{"lease equal to heartbeat", "leader_lease_timeout = \"300ms\"", ""},
		{"lease below heartbeat", "leader_lease_timeout = \"100ms\"", ""},
		{"lease fits raised heartbeat", "heartbeat_timeout = \"1s\"\nelection_timeout = \"1s\"\nleader_lease_timeout = \"500ms\"", ""},
		{"election below heartbeat", "heartbeat_timeout = \"1s\"", "raft.election_timeout = 300ms must be at least raft.heartbeat_timeout = 1s"},
		{"election above heartbeat", "election_timeout = \"1s\"", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := loadAndValidate(t, "[raft]\n"+tc.raft+"\n", nodeEnv())
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestFmtDuration(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{300 * time.Millisecond, "300ms"},
		{10 * time.Second, "10s"},
		{5 * time.Minute, "5m"},
		{90 * time.Second, "1m30s"},
		{24 * time.Hour, "24h"},
		{90 * time.Minute, "1h30m"},
		{time.Hour + time.Second, "1h0m1s"},
	}
	for _, tc := range cases {
		if got := fmtDuration(tc.d); got != tc.want {
			t.Errorf("fmtDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestValidate_ReportsEveryError(t *testing.T) {
	c := Defaults()
	c.Raft.CommitTimeout = 0
	c.Log.Format = "xml"
	err := c.Validate()
	for _, want := range []string{"server.node_id", "raft.commit_timeout", "log.format"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to name %s", err, want)
		}
	}
}

func TestLoad_BadFilesNameTheKey(t *testing.T) {
	cases := []struct{ name, file, want string }{
		{"duration not parseable", "[raft]\nheartbeat_timeout = \"soon\"", "raft.heartbeat_timeout = \"soon\" is not a duration"},
		{"duration without unit", "[raft]\nheartbeat_timeout = 300", "raft.heartbeat_timeout = \"300\" is not a duration"},
		{"duration as bool", "[api]\nread_timeout = true", "api.read_timeout = \"true\" is not a duration"},
		{"bool not parseable", "[ha]\nrebuild_on_rewind_failure = \"maybe\"", "ha.rebuild_on_rewind_failure = \"maybe\" is not true or false"},
		{"integer as string", "[raft]\nsnapshot_threshold = \"many\"", "raft.snapshot_threshold = \"many\" is not an integer"},
		{"integer as float", "[api]\nmax_body_bytes = 1.5", "api.max_body_bytes = \"1.5\" is not an integer"},
		{"negative unsigned", "[raft]\ntrailing_logs = -1", "raft.trailing_logs = -1 is out of range 0-10000000"},
		{"string as integer", "[server]\nnode_id = 7", "server.node_id = 7 is not a string"},
		{"string as array", "[log]\nlevel = [\"info\"]", "log.level = [info] is not a string"},
		{"unknown key", "[server]\nnode_idd = \"m1\"", "unknown key(s) server.node_idd"},
		{"unknown raft key", "[raft]\nheartbeat = \"1s\"", "unknown key(s) raft.heartbeat"},
		{"unknown section", "[serverr]\nnode_id = \"m1\"", "unknown key(s) serverr.node_id"},
		{"top-level key", "node_id = \"m1\"", "unknown key(s) node_id"},
		{"table instead of value", "[raft.heartbeat_timeout]\nvalue = \"1s\"", "unknown key(s) raft.heartbeat_timeout.value"},
		{"several unknown keys", "[log]\nlevl = \"info\"\nfromat = \"json\"", "unknown key(s) log.fromat, log.levl"},
		{"syntax error", "[server\nnode_id = 1", "read config file"},
		{"duplicate key", "[server]\nnode_id = \"m1\"\nnode_id = \"m2\"", "read config file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tc.file), nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoad_BadEnvValuesNameTheKey(t *testing.T) {
	cases := []struct{ env, want string }{
		{"CLUSTERMGR_RAFT_HEARTBEAT_TIMEOUT=fast", "raft.heartbeat_timeout = \"fast\" is not a duration"},
		{"CLUSTERMGR_RAFT_MAX_APPEND_ENTRIES=lots", "raft.max_append_entries = \"lots\" is not an integer"},
		{"CLUSTERMGR_API_MAX_BODY_BYTES=-5", "api.max_body_bytes = -5 is out of range 1024-67108864"},
	}
	for _, tc := range cases {
		t.Run(tc.env, func(t *testing.T) {
			_, err := Load("", []string{tc.env}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoad_MissingFileNamesPath(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent", "cluster_mgr.cnf")
	_, err := Load(missing, nil, nil)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("error %v, want it to name %s", err, missing)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %v does not wrap fs.ErrNotExist", err)
	}
}

func TestLoad_Precedence(t *testing.T) {
	const file = "[server]\nnode_id = \"file\"\ndata_dir = \"/file\"\napi_addr = \"127.0.0.1:9001\"\n[raft]\nheartbeat_timeout = \"1s\"\nelection_timeout = \"1s\"\n"
	cases := []struct {
		name  string
		file  string // "" = no file
		env   []string
		flags []string
		check func(c Config) (got, want any)
	}{
		{"file over default", file, nil, nil,
			func(c Config) (any, any) { return c.Server.APIAddr, "127.0.0.1:9001" }},
		{"default when nothing sets a key", file, nil, nil,
			func(c Config) (any, any) { return c.Server.RaftAddr, "127.0.0.1:7001" }},
		{"env over file", file, []string{"CLUSTERMGR_RAFT_HEARTBEAT_TIMEOUT=2s"}, nil,
			func(c Config) (any, any) { return c.Raft.HeartbeatTimeout, 2 * time.Second }},
		{"env over default", "", []string{"CLUSTERMGR_API_MAX_BODY_BYTES=4096"}, nil,
			func(c Config) (any, any) { return c.API.MaxBodyBytes, int64(4096) }},
		{"env may empty a key", file, []string{"CLUSTERMGR_SERVER_DATA_DIR="}, nil,
			func(c Config) (any, any) { return c.Server.DataDir, "" }},
		{"last env entry wins", "", []string{"CLUSTERMGR_LOG_LEVEL=warn", "CLUSTERMGR_LOG_LEVEL=debug"}, nil,
			func(c Config) (any, any) { return c.Log.Level, "debug" }},
		{"unrelated env ignored", file, []string{"CLUSTERMGR_SERVER=http://x", "CLUSTERMGR_NO_SUCH_KEY=1", "NODE_ID=x"}, nil,
			func(c Config) (any, any) { return c.Server.NodeID, "file" }},
		{"flag over env and file", file, []string{"CLUSTERMGR_SERVER_DATA_DIR=/env"}, []string{"--data-dir", "/flag"},
			func(c Config) (any, any) { return c.Server.DataDir, "/flag" }},
		{"flag node-id over env", file, []string{"CLUSTERMGR_SERVER_NODE_ID=env"}, []string{"--node-id=flag"},
			func(c Config) (any, any) { return c.Server.NodeID, "flag" }},
		{"env kept when flag unchanged", file, []string{"CLUSTERMGR_SERVER_NODE_ID=env"}, []string{"--data-dir", "/flag"},
			func(c Config) (any, any) { return c.Server.NodeID, "env" }},
		{"flag peers", "", nil, []string{"--peers", "m1=127.0.0.1:7001"},
			func(c Config) (any, any) { return c.Server.Peers, "m1=127.0.0.1:7001" }},
		{"flag raft-addr", "", nil, []string{"--raft-addr", "10.0.0.1:7001"},
			func(c Config) (any, any) { return c.Server.RaftAddr, "10.0.0.1:7001" }},
		{"flag api-addr", file, nil, []string{"--api-addr", "10.0.0.1:8001"},
			func(c Config) (any, any) { return c.Server.APIAddr, "10.0.0.1:8001" }},
		{"flag agent-token", "", []string{"CLUSTERMGR_SERVER_AGENT_TOKEN=env-token-0123456"}, []string{"--agent-token", "flag-token-012345"},
			func(c Config) (any, any) { return c.Server.AgentToken, "flag-token-012345" }},
		{"flag set to empty still overrides", file, nil, []string{"--data-dir="},
			func(c Config) (any, any) { return c.Server.DataDir, "" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.file != "" {
				path = writeFile(t, tc.file)
			}
			c, err := Load(path, tc.env, serverFlags(t, tc.flags...))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := tc.check(c); got != want {
				t.Fatalf("got %v, want %v", got, want)
			}
		})
	}
}

func TestLoad_NilFlagsAndNoFile(t *testing.T) {
	c, err := Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c != Defaults() {
		t.Fatalf("Load with nothing differs from Defaults: %+v", c)
	}
}

func TestEnvName(t *testing.T) {
	cases := []struct{ key, want string }{
		{"server.node_id", "CLUSTERMGR_SERVER_NODE_ID"},
		{"raft.heartbeat_timeout", "CLUSTERMGR_RAFT_HEARTBEAT_TIMEOUT"},
		{"api.max_body_bytes", "CLUSTERMGR_API_MAX_BODY_BYTES"},
	}
	for _, tc := range cases {
		if got := EnvName(tc.key); got != tc.want {
			t.Errorf("EnvName(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestSlogLevel(t *testing.T) {
	cases := []struct {
		level string
		want  slog.Level
	}{
		{"debug", slog.LevelDebug},
		{"info", slog.LevelInfo},
		{"warn", slog.LevelWarn},
		{"error", slog.LevelError},
		{"", slog.LevelInfo},
	}
	for _, tc := range cases {
		t.Run(tc.level, func(t *testing.T) {
			c := Defaults()
			c.Log.Level = tc.level
			if got := c.SlogLevel(); got != tc.want {
				t.Fatalf("SlogLevel() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNewLogger_FormatAndLevel(t *testing.T) {
	cases := []struct {
		format, level string
		shown         string // what the shown record looks like
	}{
		{"json", "warn", `"msg":"shown"`},
		{"text", "warn", `msg=shown`},
		{"text", "error", ""},
	}
	for _, tc := range cases {
		t.Run(tc.format+"/"+tc.level, func(t *testing.T) {
			var b strings.Builder
			c := Defaults()
			c.Log.Format, c.Log.Level = tc.format, tc.level
			l := c.NewLogger(&b)
			l.Info("hidden")
			l.Warn("shown", "k", 1)
			out := b.String()
			if strings.Contains(out, "hidden") {
				t.Fatalf("record below the level logged: %q", out)
			}
			if tc.shown == "" {
				if out != "" {
					t.Fatalf("record below the level logged: %q", out)
				}
				return
			}
			if !strings.Contains(out, tc.shown) {
				t.Fatalf("log output %q, want it to contain %q", out, tc.shown)
			}
		})
	}
}
