package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cluster_mgr.cnf")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults_ValidOnceNodeIDSet(t *testing.T) {
	c := Defaults()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "server.node_id is required") {
		t.Fatalf("defaults without node id: %v", err)
	}
	c.Server.NodeID = "m1"
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.Raft.HeartbeatTimeout != 300*time.Millisecond || c.API.MaxBodyBytes != 1<<20 || c.Raft.SnapshotThreshold != 8192 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestExampleFile_LoadsAndValidates(t *testing.T) {
	c, err := Load("../../cluster_mgr.cnf.example", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	d.Server.NodeID = "m1"
	d.Server.Peers = c.Server.Peers
	if c != d {
		t.Fatalf("example differs from the defaults:\nexample  %+v\ndefaults %+v", c, d)
	}
}

func TestValidate_NamesKeyAndRange(t *testing.T) {
	cases := []struct {
		file, want string
	}{
		{"[server]\nnode_id = \"M1\"", "server.node_id"},
		{"[server]\nnode_id = \"m1\"\nraft_addr = \"nohost\"", "server.raft_addr = \"nohost\" is not host:port"},
		{"[server]\nnode_id = \"m1\"\napi_addr = \"127.0.0.1:70000\"", "server.api_addr = \"127.0.0.1:70000\": port is out of range 1-65535"},
		{"[server]\nnode_id = \"m1\"\npeers = \"m1=127.0.0.1:1,m1=127.0.0.1:2\"", "server.peers: id \"m1\" appears twice"},
		{"[server]\nnode_id = \"m1\"\npeers = \"m1\"", "server.peers: \"m1\" is not id=host:port"},
		{"[server]\nnode_id = \"m1\"\nagent_token = \"short\"", "server.agent_token must be at least 16 characters"},
		{"[server]\nnode_id = \"m1\"\nadvertise_api = \"ftp://x\"", "server.advertise_api"},
		{"[server]\nnode_id = \"m1\"\n[raft]\nheartbeat_timeout = \"5ms\"\nleader_lease_timeout = \"5ms\"", "raft.heartbeat_timeout = 5ms is out of range 50ms-10s"},
		{"[server]\nnode_id = \"m1\"\n[raft]\nelection_timeout = \"1m\"", "raft.election_timeout = 1m0s is out of range 50ms-10s"},
		{"[server]\nnode_id = \"m1\"\n[raft]\nleader_lease_timeout = \"500ms\"", "raft.leader_lease_timeout = 500ms must not exceed raft.heartbeat_timeout = 300ms"},
		{"[server]\nnode_id = \"m1\"\n[raft]\ncommit_timeout = \"2s\"", "raft.commit_timeout = 2s is out of range 1ms-1s"},
		{"[server]\nnode_id = \"m1\"\n[raft]\nsnapshot_threshold = 1", "raft.snapshot_threshold = 1 is out of range 16-10000000"},
		{"[server]\nnode_id = \"m1\"\n[raft]\nmax_append_entries = 5000", "raft.max_append_entries = 5000 is out of range 1-1024"},
		{"[server]\nnode_id = \"m1\"\n[api]\nmax_body_bytes = 10", "api.max_body_bytes = 10 is out of range 1024-67108864"},
		{"[server]\nnode_id = \"m1\"\n[log]\nlevel = \"loud\"", "log.level = \"loud\" is not one of debug, info, warn, error"},
		{"[server]\nnode_id = \"m1\"\n[log]\nformat = \"xml\"", "log.format"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			c, err := Load(writeFile(t, tc.file), nil, nil)
			if err == nil {
				err = c.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoad_BadValuesNameTheKey(t *testing.T) {
	cases := []struct{ file, want string }{
		{"[raft]\nheartbeat_timeout = \"soon\"", "raft.heartbeat_timeout = \"soon\" is not a duration"},
		{"[raft]\nsnapshot_threshold = \"many\"", "raft.snapshot_threshold = \"many\" is not an integer"},
		{"[raft]\ntrailing_logs = -1", "raft.trailing_logs = -1 is out of range"},
		{"[server]\nnode_id = 7", "server.node_id = 7 is not a string"},
		{"[server]\nnode_idd = \"m1\"", "unknown key(s) server.node_idd"},
		{"[raft]\nheartbeat = \"1s\"", "unknown key(s) raft.heartbeat"},
		{"[server\nnode_id = 1", "read config file"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			_, err := Load(writeFile(t, tc.file), nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoad_MissingFileNamesPath(t *testing.T) {
	_, err := Load("/nonexistent/cluster_mgr.cnf", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/cluster_mgr.cnf") {
		t.Fatalf("error %v", err)
	}
}

func TestLoad_EnvOverridesFileAndFlagsOverrideBoth(t *testing.T) {
	file := writeFile(t, "[server]\nnode_id = \"m1\"\ndata_dir = \"/file\"\napi_addr = \"127.0.0.1:9001\"\n[raft]\nheartbeat_timeout = \"1s\"\n")
	env := []string{"CLUSTERMGR_SERVER_DATA_DIR=/env", "CLUSTERMGR_RAFT_HEARTBEAT_TIMEOUT=2s", "CLUSTERMGR_SERVER_NODE_ID=m2", "UNRELATED=1"}
	flags := pflag.NewFlagSet("server", pflag.ContinueOnError)
	for _, f := range []string{"node-id", "data-dir", "raft-addr", "api-addr", "peers", "agent-token"} {
		flags.String(f, "", "")
	}
	if err := flags.Parse([]string{"--data-dir", "/flag"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(file, env, flags)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.DataDir != "/flag" || c.Server.NodeID != "m2" || c.Raft.HeartbeatTimeout != 2*time.Second || c.Server.APIAddr != "127.0.0.1:9001" {
		t.Fatalf("precedence: %+v", c.Server)
	}
	// Unset flags do not override.
	if c.Server.RaftAddr != "127.0.0.1:7001" {
		t.Fatalf("raft addr %q", c.Server.RaftAddr)
	}
}

func TestNewLogger_FormatAndLevel(t *testing.T) {
	var b strings.Builder
	c := Defaults()
	c.Log.Format, c.Log.Level = "json", "warn"
	l := c.NewLogger(&b)
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	if strings.Contains(b.String(), "hidden") || !strings.Contains(b.String(), `"msg":"shown"`) {
		t.Fatalf("log output %q", b.String())
	}
}
