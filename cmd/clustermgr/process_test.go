package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/authtest"
	"github.com/clustermgr/clustermgr/internal/tlstest"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/auth"
)

// TestProcess_SIGKILLLeaderElectsNewLeaderAndKeepsState builds the binary,
// runs three server processes, kills the leader with SIGKILL and checks that
// a new leader serves the whole state and takes writes, that the killed
// replica comes back from its disk and catches up, and that SIGTERM stops
// every process cleanly.
func TestProcess_SIGKILLLeaderElectsNewLeaderAndKeepsState(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs server processes")
	}
	g := startProcGroup(t, buildBinary(t), 3)
	old := g.leader(15 * time.Second)
	ctx := context.Background()

	for i := 0; i < 5; i++ {
		status, body, err := call(ctx, "POST", old.url()+"/v1/clusters", map[string]any{"name": fmt.Sprintf("c%d", i), "pg_password": "pw"})
		if err != nil || status != 201 {
			t.Fatalf("create cluster: %d %s %v", status, body, err)
		}
	}
	status, body, err := call(ctx, "POST", old.url()+"/v1/clusters/c0/shards", map[string]any{"name": "s1", "nodes": []map[string]any{
		{"name": "pg1", "host": "127.0.0.1", "port": 5432, "role": "primary"}, {"name": "pg2", "host": "127.0.0.1", "port": 5433, "role": "standby"}}})
	if err != nil || status != 201 {
		t.Fatalf("create shard: %d %s %v", status, body, err)
	}

	g.kill(old)
	next := g.leader(15 * time.Second)
	if next.id == old.id {
		t.Fatalf("leader is still %s after SIGKILL", old.id)
	}
	var list api.ClusterList
	status, body, err = call(ctx, "GET", next.url()+"/v1/clusters?consistency=linearizable", nil)
	if err != nil || status != 200 || json.Unmarshal(body, &list) != nil {
		t.Fatalf("list clusters on new leader: %d %s %v", status, body, err)
	}
	if len(list.Clusters) != 5 || len(list.Clusters[0].Shards) != 1 || len(list.Clusters[0].Shards[0].Nodes) != 2 || !list.Clusters[0].PGPasswordSet {
		t.Fatalf("state after failover: %s", body)
	}
	// Writes succeed through any surviving replica.
	for _, n := range g.nodes {
		if n.cmd == nil {
			continue
		}
		name := "after-" + n.id
		if status, body, err := call(ctx, "POST", n.url()+"/v1/clusters", map[string]any{"name": name}); err != nil || status != 201 {
			t.Fatalf("write through %s after failover: %d %s %v", n.id, status, body, err)
		}
	}

	// The killed replica restarts from its disk and catches up.
	g.start(old)
	deadline := time.Now().Add(15 * time.Second)
	for {
		status, body, err := call(ctx, "GET", old.url()+"/v1/clusters?stale=true", nil)
		if err == nil && status == 200 && json.Unmarshal(body, &list) == nil && len(list.Clusters) == 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted %s did not catch up: %d %s %v", old.id, status, body, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// SIGTERM: every process exits 0; the leader hands over first.
	leader := g.leader(15 * time.Second)
	if err := g.terminate(leader, 15*time.Second); err != nil {
		t.Fatalf("SIGTERM of leader %s: %v", leader.id, err)
	}
	logData, _ := os.ReadFile(leader.logPath)
	if !strings.Contains(string(logData), "leadership transferred before shutdown") {
		t.Errorf("leader log does not show a leadership transfer:\n%s", tail(logData, 2000))
	}
	for _, n := range g.nodes {
		if n.cmd != nil {
			if err := g.terminate(n, 15*time.Second); err != nil {
				t.Fatalf("SIGTERM of %s: %v", n.id, err)
			}
		}
	}
}

// TestProcess_DefaultsMakeAnAdminTokenAndRefuseAnonymousChanges starts a
// group with no token or key setting: the first leader writes admin.token
// (mode 0600) in its data directory, that token works through any
// replica, and a request without it is refused. The token is in no log.
// Each replica made its own secret key, so a password is refused until
// the leader's key file is copied to the others; then it is stored sealed
// (in no file of any data directory).
func TestProcess_DefaultsMakeAnAdminTokenAndRefuseAnonymousChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs server processes")
	}
	g := newProcGroup(t, buildBinary(t), 3) // no token file: the default
	for _, n := range g.nodes {
		g.start(n)
	}

	var token, file string
	deadline := time.Now().Add(20 * time.Second)
	for token == "" && time.Now().Before(deadline) {
		for _, n := range g.nodes {
			p := filepath.Join(n.dataDir, "admin.token")
			if tok, err := auth.ReadTokenFile(p); err == nil {
				token, file = tok, p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if token == "" {
		t.Fatal("no replica wrote admin.token")
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token: %v %v", fi.Mode(), err)
	}
	ctx := context.Background()
	for _, n := range g.nodes {
		var status int
		for time.Now().Before(deadline) {
			status, _, _ = callAs(ctx, token, "POST", n.url()+"/v1/clusters", map[string]any{"name": "c-" + n.id})
			if status == 201 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if status != 201 {
			t.Fatalf("create a cluster through %s with the bootstrap token: %d", n.id, status)
		}
		if status, body, _ := callAs(ctx, "", "POST", n.url()+"/v1/clusters", map[string]any{"name": "anon-" + n.id}); status != 401 {
			t.Fatalf("anonymous create through %s: %d %s", n.id, status, body)
		}
	}
	// Each replica made its own secret key: a password is refused, naming
	// the replicas that lack the leader's key, and nothing is written.
	var leader *procNode
	for leader == nil && time.Now().Before(deadline) {
		status, body, _ := callAs(ctx, token, "GET", g.nodes[0].url()+"/v1/manager", nil)
		var m api.Manager
		if status == 200 && json.Unmarshal(body, &m) == nil {
			for _, n := range g.nodes {
				if n.id == m.LeaderID {
					leader = n
				}
			}
		}
	}
	if leader == nil {
		t.Fatal("no leader")
	}
	status, body, _ := callAs(ctx, token, "POST", leader.url()+"/v1/clusters", map[string]any{"name": "secure", "pg_password": "Default-Keys-Password-91c"})
	if status != 503 || !strings.Contains(string(body), "secret-key-missing") {
		t.Fatalf("a password with a key on one replica only: %d %s", status, body)
	}
	for _, n := range g.nodes {
		if n != leader && !strings.Contains(string(body), n.id) {
			t.Fatalf("the refusal does not name %s: %s", n.id, body)
		}
	}
	if status, _, _ := callAs(ctx, token, "GET", leader.url()+"/v1/clusters/secure", nil); status != 404 {
		t.Fatalf("the refused cluster exists: %d", status)
	}
	// The leader's key file copied to the others, as the README says:
	// the password is taken.
	key, err := os.ReadFile(filepath.Join(leader.dataDir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range g.nodes {
		if n == leader {
			continue
		}
		if err := g.terminate(n, 15*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(n.dataDir, "secret.key"), key, 0o600); err != nil {
			t.Fatal(err)
		}
		g.start(n)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		status, body, _ = callAs(ctx, token, "POST", leader.url()+"/v1/clusters", map[string]any{"name": "secure", "pg_password": "Default-Keys-Password-91c"})
		if status == 201 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status != 201 {
		t.Fatalf("a password once every replica holds the key: %d %s", status, body)
	}
	for _, n := range g.nodes {
		if err := g.terminate(n, 15*time.Second); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(n.logPath)
		if strings.Contains(string(data), token) {
			t.Fatalf("the admin token is in the log of %s", n.id)
		}
		authtest.NoFileHolds(t, n.dataDir, "Default-Keys-Password-91c")
		// What a replica writes is its user's alone.
		err := filepath.WalkDir(n.dataDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s has mode %v", path, fi.Mode())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestProcess_TLSFromTheConfigAndTheCLI starts a server whose [tls]
// settings come from the environment and talks to it with the CLI and
// the group's CA; a CLI without the CA is refused by its own TLS check.
func TestProcess_TLSFromTheConfigAndTheCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs server processes")
	}
	ca := tlstest.NewCA(t, "group")
	cert, key := ca.Issue("m1")
	g := startProcGroup(t, buildBinary(t), 1, "CLUSTERMGR_TLS_CERT_FILE="+cert, "CLUSTERMGR_TLS_KEY_FILE="+key, "CLUSTERMGR_TLS_CA_FILE="+ca.File)
	srv := "--server=https://" + g.nodes[0].api
	t.Setenv("CLUSTERMGR_TOKEN", authtest.AdminToken)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := cli(t, "cluster", "create", "app", srv, "--ca-file", ca.File)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("create a cluster over TLS: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := mustCLI(t, "cluster", "list", srv, "--ca-file", ca.File); !strings.Contains(out, "app") {
		t.Fatalf("cluster list over TLS:\n%s", out)
	}
	if _, err := cli(t, "cluster", "list", srv); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a CLI without the CA: %v", err)
	}
	// A half-set [tls] section is refused at start, naming the keys.
	cmd := exec.Command(g.bin, "server", "--node-id", "m9", "--data-dir", t.TempDir(), "--peers", "m9=127.0.0.1:1")
	cmd.Env = append(os.Environ(), "CLUSTERMGR_TLS_CERT_FILE="+cert)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "tls.cert_file, tls.key_file and tls.ca_file") {
		t.Fatalf("a half-set [tls]: %v\n%s", err, out)
	}
}
