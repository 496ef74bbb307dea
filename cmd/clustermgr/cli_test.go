package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/clustermgr/clustermgr/internal/apitest"
	"github.com/clustermgr/clustermgr/internal/authtest"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/openapi"
	"github.com/clustermgr/clustermgr/pkg/replica"
)

// startReplica runs a one-replica group in memory for the CLI to talk to.
func startReplica(t *testing.T) string {
	t.Helper()
	addr, trans := raft.NewInmemTransport("")
	timing := meta.DefaultTiming()
	timing.HeartbeatTimeout, timing.ElectionTimeout, timing.LeaderLeaseTimeout = 100*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond
	r, err := replica.Start(replica.Config{
		NodeID: "m1", APIListen: "127.0.0.1:0", Peers: []meta.Peer{{ID: "m1", RaftAddr: string(addr)}},
		Timing: timing, Transport: trans, InMemory: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		AdminTokenFile: authtest.TokenFile(t), Keyring: authtest.Keyring(),
		WrapAPI: apitest.Middleware(t), // every exchange of the CLI is held to the API document
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Kill() })
	t.Setenv("CLUSTERMGR_TOKEN", authtest.AdminToken)
	deadline := time.Now().Add(5 * time.Second)
	for {
		tokens := 0
		_ = r.Store.View(context.Background(), meta.Stale, func(st *meta.State) error {
			tokens = len(st.Tokens)
			return nil
		})
		if _, api := r.Store.Leader(); api != "" && tokens > 0 {
			return r.URL
		}
		if time.Now().After(deadline) {
			t.Fatal("replica did not lead")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cli runs the clustermgr command line in-process.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd(&out, &errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cli(t, args...)
	if err != nil {
		t.Fatalf("clustermgr %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func TestCLI_TopologyRoundTrip(t *testing.T) {
	srv := "--server=http://127.0.0.1:1," + startReplica(t) // the first one is down
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustCLI(t, "cluster", "create", "orders", "--pg-user", "cm", "--pg-password-file", pw, srv)
	if !strings.Contains(out, "PG_PASSWORD") || !strings.Contains(out, "(set)") || strings.Contains(out, "s3cret") {
		t.Fatalf("create output:\n%s", out)
	}
	mustCLI(t, "shard", "create", "orders", "s1", srv,
		"--node", "name=pg1,host=127.0.0.1,port=5432,role=primary,priority=10",
		"--node", "name=pg2,host=127.0.0.1,port=5433,role=standby,tags=nofailover")
	mustCLI(t, "node", "add", "orders", "s1", "--name", "pg3", "--host", "127.0.0.1", "--port", "5434", "--role", "standby", srv)

	var sh api.Shard
	if err := json.Unmarshal([]byte(mustCLI(t, "shard", "show", "orders", "s1", "-o", "json", srv)), &sh); err != nil {
		t.Fatal(err)
	}
	if sh.Primary != "pg1" || len(sh.Nodes) != 3 || sh.Nodes[1].Tags[0] != "nofailover" || sh.Nodes[0].Priority != 10 {
		t.Fatalf("shard %+v", sh)
	}
	table := mustCLI(t, "cluster", "list", srv)
	if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[1], "orders  ") || !strings.Contains(lines[1], " 3 ") {
		t.Fatalf("cluster list:\n%s", table)
	}
	mustCLI(t, "cluster", "update", "orders", "--auto-failover=false", srv)
	if out := mustCLI(t, "cluster", "show", "orders", srv); !strings.Contains(out, "AUTO_FAILOVER     false") {
		t.Fatalf("cluster show:\n%s", out)
	}
	mustCLI(t, "node", "remove", "orders", "s1", "pg3", srv)
	if out := mustCLI(t, "events", "--cluster", "orders", srv); !strings.Contains(out, "node_removed") || !strings.Contains(out, "shard_created") {
		t.Fatalf("events:\n%s", out)
	}
	if out := mustCLI(t, "status", srv); !strings.Contains(out, "Leader") || !strings.Contains(out, "m1") {
		t.Fatalf("status:\n%s", out)
	}
	if out := mustCLI(t, "members", "list", "-o", "json", srv); !strings.Contains(out, `"leader": true`) {
		t.Fatalf("members:\n%s", out)
	}

	// Errors from the server come back as clear messages.
	_, err := cli(t, "cluster", "delete", "orders", srv)
	if err == nil || !strings.Contains(err.Error(), "409 Conflict") || !strings.Contains(err.Error(), "force") {
		t.Fatalf("delete without force: %v", err)
	}
	_, err = cli(t, "node", "add", "orders", "s1", "--name", "pg9", "--host", "h", "--port", "70000", "--role", "standby", srv)
	if err == nil || !strings.Contains(err.Error(), "400 Bad Request: port: 70000 is out of range 1-65535") {
		t.Fatalf("bad port: %v", err)
	}
	// Shard settings and the HA commands (this replica runs no pipeline).
	out = mustCLI(t, "shard", "set", "orders", "s1", "--synchronous", "on", "--max-lag-on-failover", "1048576", srv)
	if !strings.Contains(out, "SYNCHRONOUS") || !strings.Contains(out, "on") {
		t.Fatalf("shard set:\n%s", out)
	}
	if _, err := cli(t, "shard", "set", "orders", "s1", "--synchronous", "maybe", srv); err == nil || !strings.Contains(err.Error(), `synchronous: "maybe" is not off, on or strict`) {
		t.Fatalf("bad synchronous mode: %v", err)
	}
	if _, err := cli(t, "switchover", "orders", "s1", "--timeout", "1s", srv); err == nil || !strings.Contains(err.Error(), "HA pipeline is not running") {
		t.Fatalf("switchover without a pipeline: %v", err)
	}
	if _, err := cli(t, "failover", "orders", "s1", srv); err == nil || !strings.Contains(err.Error(), "--to is required") {
		t.Fatalf("failover without --to: %v", err)
	}
	for _, args := range [][]string{{"backup", "orders", "s1"}, {"reinit", "orders", "s1", "pg2"}} {
		if _, err := cli(t, append(args, "--timeout", "1s", srv)...); err == nil || !strings.Contains(err.Error(), "HA pipeline is not running") {
			t.Fatalf("%v without a pipeline: %v", args, err)
		}
	}
	out = mustCLI(t, "shard", "set", "orders", "s1", "--backup-schedule", "0 3 * * *", "--backup-retention", "3", srv, "-o", "json")
	if !strings.Contains(out, `"backup_schedule": "0 3 * * *"`) || !strings.Contains(out, `"backup_retention": 3`) {
		t.Fatalf("shard set backups:\n%s", out)
	}
	if _, err := cli(t, "shard", "set", "orders", "s1", "--backup-schedule", "@every 1s", srv); err == nil || !strings.Contains(err.Error(), "backups must be at least") {
		t.Fatalf("a schedule firing every second: %v", err)
	}
	if out := mustCLI(t, "backups", "orders", "s1", srv); !strings.HasPrefix(out, "ID") {
		t.Fatalf("backups:\n%s", out)
	}
	if _, err := cli(t, "operations", "wait", "nope", srv); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("wait for an unknown operation: %v", err)
	}
	mustCLI(t, "resume", "orders", srv)
	if out := mustCLI(t, "cluster", "show", "orders", srv); !strings.Contains(out, "AUTO_FAILOVER     true") {
		t.Fatalf("after resume:\n%s", out)
	}
	mustCLI(t, "pause", "orders", srv)
	if out := mustCLI(t, "cluster", "show", "orders", srv); !strings.Contains(out, "AUTO_FAILOVER     false") {
		t.Fatalf("after pause:\n%s", out)
	}
	mustCLI(t, "cluster", "delete", "orders", "--force", srv)
	if _, err := cli(t, "cluster", "show", "orders", srv); err == nil || !strings.Contains(err.Error(), "404 Not Found") {
		t.Fatalf("show deleted: %v", err)
	}
}

func TestCLI_BadInputIsReportedBeforeAnyRequest(t *testing.T) {
	srv := "--server=http://127.0.0.1:1" // nothing listens: a request would fail differently
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"shard", "create", "c", "s", "--node", "name=a,host=h,port=x,role=primary", srv}, `port "x" is not a number`},
		{[]string{"shard", "create", "c", "s", "--node", "name=a,host=h,role=primary", srv}, "port is required"},
		{[]string{"shard", "create", "c", "s", "--node", "name=a,colour=red", srv}, `unknown key "colour"`},
		{[]string{"shard", "create", "c", "s", "--node", "name", srv}, "is not key=value"},
		{[]string{"shard", "create", "c", "s", srv}, "no nodes"},
		{[]string{"node", "add", "c", "s", "--name", "a", srv}, "--host is required"},
		{[]string{"cluster", "update", "c", srv}, "nothing to change"},
		{[]string{"shard", "set", "c", "s", srv}, "give --synchronous, --max-lag-on-failover, --backup-schedule, --backup-retention, --param or --reset-param"},
		{[]string{"restore", "c", "s", "--node", "name=r1,host=h,port=5432", srv}, "--backup and --node are required"},
		{[]string{"restore", "c", "s", "--backup", "b1", "--node", "name=r1,port=x", srv}, `--node "name=r1,port=x": port "x" is not a number`},
		{[]string{"cluster", "create", "c", "--pg-password-file", "/nonexistent/pw", srv}, "--pg-password-file"},
		{[]string{"cluster", "list", "-o", "yaml", srv}, `--output "yaml" is not table or json`},
		{[]string{"cluster", "list", "--server", "ftp://x"}, "--server"},
		{[]string{"cluster", "show"}, "accepts 1 arg"},
	}
	for _, tc := range cases {
		_, err := cli(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("clustermgr %s: error %v, want %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

func TestCLI_UnreachableServerNamesIt(t *testing.T) {
	_, err := cli(t, "status", "--server", "http://127.0.0.1:1", "--timeout", "1s")
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("error %v", err)
	}
}

func TestCLI_Version(t *testing.T) {
	if out := mustCLI(t, "version"); !strings.HasPrefix(out, "clustermgr ") {
		t.Fatalf("version: %q", out)
	}
}

func TestCLI_TokensAndAudit(t *testing.T) {
	srv := "--server=" + startReplica(t)
	out := mustCLI(t, "token", "create", "ops", "--scope", "operate", srv)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	secret := strings.TrimSpace(lines[len(lines)-1])
	if !strings.HasPrefix(secret, "cmt_") {
		t.Fatalf("token create:\n%s", out)
	}
	file := filepath.Join(t.TempDir(), "ops.token")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustCLI(t, "token", "list", srv); !strings.Contains(out, "ops") || !strings.Contains(out, "operate") || strings.Contains(out, secret) {
		t.Fatalf("token list:\n%s", out)
	}
	if out := mustCLI(t, "whoami", srv, "--token-file", file); !regexp.MustCompile(`TOKEN\s+ops\nSCOPE\s+operate`).MatchString(out) {
		t.Fatalf("whoami:\n%s", out)
	}
	// The operate token pauses a cluster but cannot make one.
	mustCLI(t, "cluster", "create", "orders", srv)
	mustCLI(t, "pause", "orders", srv, "--token-file", file)
	if _, err := cli(t, "cluster", "create", "other", srv, "--token-file", file); err == nil || !strings.Contains(err.Error(), "403 Forbidden") || !strings.Contains(err.Error(), "needs admin") {
		t.Fatalf("create with an operate token: %v", err)
	}
	// No token, a bad one, a token file others can read.
	t.Setenv("CLUSTERMGR_TOKEN", "")
	if _, err := cli(t, "cluster", "list", srv); err == nil || !strings.Contains(err.Error(), "401 Unauthorized") {
		t.Fatalf("no token: %v", err)
	}
	t.Setenv("CLUSTERMGR_TOKEN", "hunter2")
	if _, err := cli(t, "cluster", "list", srv); err == nil || !strings.Contains(err.Error(), "CLUSTERMGR_TOKEN") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad token: %v", err)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := cli(t, "cluster", "list", srv, "--token-file", file); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("readable token file: %v", err)
	}
	t.Setenv("CLUSTERMGR_TOKEN", authtest.AdminToken)
	out = mustCLI(t, "audit", srv)
	if !strings.Contains(out, "POST /v1/tokens") || !strings.Contains(out, "PATCH /v1/clusters/orders") || strings.Contains(out, "POST /v1/clusters/other") {
		t.Fatalf("audit:\n%s", out)
	}
	mustCLI(t, "token", "revoke", "ops", srv)
	if _, err := cli(t, "token", "revoke", "admin", srv); err == nil || !strings.Contains(err.Error(), "last admin token") {
		t.Fatalf("revoke the last admin: %v", err)
	}
}

func TestCLI_Agents(t *testing.T) {
	srv := "--server=" + startReplica(t)
	mustCLI(t, "agents", "add", "h1", "http://10.0.0.11:9001", srv)
	if out := mustCLI(t, "agents", "list", srv); !strings.Contains(out, "h1") || !strings.Contains(out, "http://10.0.0.11:9001") {
		t.Fatalf("agents list:\n%s", out)
	}
	mustCLI(t, "cluster", "create", "orders", srv)
	mustCLI(t, "shard", "create", "orders", "s1", srv, "--node", "name=pg1,host=10.0.0.11,port=5432,role=primary,agent=h1,data_dir=/pg/data")
	if _, err := cli(t, "shard", "create", "orders", "s2", srv, "--node", "name=pg1,host=10.0.0.12,port=5432,role=primary,agent=http://10.0.0.12:9001,data_dir=/pg/data"); err == nil || !strings.Contains(err.Error(), "registered agent") {
		t.Fatalf("a node naming an agent by URL: %v", err)
	}
	if _, err := cli(t, "agents", "remove", "h1", srv); err == nil || !strings.Contains(err.Error(), "used by node orders/s1/pg1") {
		t.Fatalf("remove an agent in use: %v", err)
	}

	// Routing: the connection strings, and haproxy-config once the agent
	// has a health address.
	out := mustCLI(t, "connection", "orders", "s1", srv)
	if !strings.Contains(out, "postgresql://postgres@10.0.0.11:5432/postgres?connect_timeout=2&target_session_attrs=read-write") {
		t.Fatalf("connection:\n%s", out)
	}
	if _, err := cli(t, "haproxy-config", "orders", srv); err == nil || !strings.Contains(err.Error(), "agent h1 of node orders/s1/pg1 serves no health checks") {
		t.Fatalf("haproxy-config without a health URL: %v", err)
	}
	if _, err := cli(t, "agents", "add", "h1", "http://10.0.0.11:9001", "--health-url", "ftp://x", srv); err == nil || !strings.Contains(err.Error(), "health_url") {
		t.Fatalf("a bad health URL: %v", err)
	}
	mustCLI(t, "agents", "add", "h1", "http://10.0.0.11:9001", "--health-url", "http://10.0.0.11:8008", srv)
	cfg := mustCLI(t, "haproxy-config", "orders", "--write-port", "6000", srv)
	for _, want := range []string{"listen orders.s1.write\n    bind :6000\n", "listen orders.s1.read\n    bind :6001\n",
		"server orders.s1.pg1 10.0.0.11:5432 check addr 10.0.0.11 port 8008"} {
		if !strings.Contains(cfg, want) {
			t.Fatalf("haproxy-config lacks %q:\n%s", want, cfg)
		}
	}
	if _, err := cli(t, "haproxy-config", "orders", "nope", srv); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("haproxy-config of an unknown shard: %v", err)
	}
}

// TestCLI_APIDocs: the routes table names every route, and -o json is the
// document the replicas serve.
func TestCLI_APIDocs(t *testing.T) {
	out := mustCLI(t, "api-docs")
	for _, r := range openapi.Routes() {
		if !regexp.MustCompile(`(?m)^` + r.Method + `\s+` + regexp.QuoteMeta(r.Path) + `\s+` + r.Scope + `\s`).MatchString(out) {
			t.Errorf("api-docs lacks %s %s (%s):\n%s", r.Method, r.Path, r.Scope, out)
		}
	}
	doc := mustCLI(t, "api-docs", "-o", "json")
	if doc != string(openapi.Document()) || !json.Valid([]byte(doc)) {
		t.Fatalf("api-docs -o json is not the API document: %.200s", doc)
	}
	if _, err := cli(t, "api-docs", "-o", "yaml"); err == nil || !strings.Contains(err.Error(), "--output") {
		t.Fatalf("api-docs -o yaml: %v, want an error naming --output", err)
	}
}

// TestCLI_Completion: the shells' completion scripts, and completions of
// commands, subcommands and the output flag's values.
func TestCLI_Completion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		if out := mustCLI(t, "completion", sh); !strings.Contains(out, "clustermgr") {
			t.Errorf("completion %s: %.200s", sh, out)
		}
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{""}, []string{"switchover", "failover", "backup", "restore", "reinit", "rejoin", "token", "agents", "members", "operations", "api-docs", "status"}},
		{[]string{"operations", ""}, []string{"cancel", "wait"}},
		{[]string{"agents", ""}, []string{"add", "list", "remove"}},
		{[]string{"status", "--output", ""}, []string{"table", "json"}},
	} {
		out := mustCLI(t, append([]string{"__complete"}, c.args...)...)
		var got []string
		for _, line := range strings.Split(out, "\n") {
			if name, _, _ := strings.Cut(line, "\t"); name != "" && !strings.HasPrefix(name, ":") {
				got = append(got, name)
			}
		}
		for _, w := range c.want {
			if !slices.Contains(got, w) {
				t.Errorf("__complete %q: %q missing from %q", c.args, w, got)
			}
		}
	}
}
