package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/agent"
)

// startRootedAgent runs an agent whose data root is root.
func startRootedAgent(t *testing.T, e *pgtest.Env, root string) *agent.Client {
	t.Helper()
	srv, err := agent.NewServer(token, e.Runner, slog.New(slog.NewTextHandler(io.Discard, nil)), root)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return agent.NewClient(hs.URL, token)
}

func TestAgent_InitdbBasebackupPurge(t *testing.T) {
	e := pgtest.NewEnv(t)
	root := filepath.Join(e.Dir, "root")
	c := startRootedAgent(t, e, root)
	ctx := context.Background()

	pDir, sDir := filepath.Join(root, "pg1", "data"), filepath.Join(root, "pg2", "data")
	pPort, sPort := pgtest.FreePort(t), pgtest.FreePort(t)
	const password = "Provisioned-pw-'quoted'"
	if _, err := c.Initdb(ctx, agent.Request{DataDir: pDir, Epoch: 1, Port: pPort, AllowHosts: []string{"127.0.0.1"}, Password: password, Listen: "127.0.0.1",
		Parameters: map[string]string{"max_connections": "30"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, pDir, 1); err != nil {
		t.Fatal(err)
	}
	primary := e.Adopt("pg1", "127.0.0.1", pPort, pDir)
	primary.Password = password
	n, err := primary.QueryInt("SELECT current_setting('max_connections')::int")
	if err != nil || n != 30 {
		t.Fatalf("primary settings: %d %v", n, err)
	}
	checkLockedDown(t, e, primary)
	if _, err := primary.QueryInt("SELECT 1 FROM pg_create_physical_replication_slot('pg2')"); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password='Provisioned-pw-\\'quoted\\''", pPort)
	if _, err := c.Basebackup(ctx, agent.Request{DataDir: sDir, Epoch: 1, Port: sPort, Source: src, Listen: "127.0.0.1", PrimarySlotName: "pg2", AppName: "pg2"}); err != nil {
		t.Fatal(err)
	}
	e.Adopt("pg2", "127.0.0.1", sPort, sDir).Password = password
	if _, err := c.Start(ctx, sDir, 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, err := primary.QueryInt("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pg2' AND state = 'streaming'")
		if err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby not streaming: %d %v", n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A verified base backup of the primary.
	info, err := c.Backup(ctx, "b1", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Verified || info.SizeBytes < 1<<20 || info.StartLSN == "" || info.StopLSN == "" || info.Timeline != 1 || info.Path != filepath.Join(root, "backups", "b1") {
		t.Fatalf("backup %+v", info)
	}
	if _, err := c.Backup(ctx, "b1", src, 0); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("a second backup with the same id: %v", err)
	}
	if _, err := c.Backup(ctx, "../b2", src, 0); err == nil || !strings.Contains(err.Error(), "backup_id") {
		t.Fatalf("a backup id with a path in it: %v", err)
	}

	// Paths are checked: outside the roots, or an existing non-empty dir.
	for _, tc := range []struct {
		req  agent.Request
		want string
	}{
		{agent.Request{DataDir: filepath.Join(e.Dir, "elsewhere", "data"), Epoch: 1, Port: 5999, Password: "x", Listen: "127.0.0.1"}, "outside the allowed roots"},
		{agent.Request{DataDir: root, Epoch: 1, Port: 5999, Password: "x", Listen: "127.0.0.1"}, "outside the allowed roots"},
		{agent.Request{DataDir: pDir, Epoch: 1, Port: 5999, Password: "x", Listen: "127.0.0.1"}, "exists and is not empty"},
		{agent.Request{DataDir: filepath.Join(root, "x"), Epoch: 1, Port: 0}, "port 0 is out of range"},
		{agent.Request{DataDir: filepath.Join(root, "x"), Epoch: 1, Port: pPort}, "is in use on this host"},
		// Locked down: a password for scram-sha-256, one listen address.
		{agent.Request{DataDir: filepath.Join(root, "x"), Epoch: 1, Port: 5999, Listen: "127.0.0.1"}, "password (the superuser's) is required"},
		{agent.Request{DataDir: filepath.Join(root, "x"), Epoch: 1, Port: 5999, Password: "x"}, "listen_addresses (the node's host) is required"},
		{agent.Request{DataDir: filepath.Join(root, "x"), Epoch: 1, Port: 5999, Password: "x", Listen: "*"}, "not one host name or IP address"},
		{agent.Request{DataDir: filepath.Join(root, "x"), Epoch: 1, Port: 5999, Password: "x", Listen: "127.0.0.1,0.0.0.0"}, "not one host name or IP address"},
	} {
		_, err := c.Initdb(ctx, tc.req)
		var ae *agent.Error
		if !asAgentError(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Detail, tc.want) {
			t.Errorf("initdb %s: %v, want 400 %q", tc.req.DataDir, err, tc.want)
		}
	}
	if err := c.Purge(ctx, filepath.Join(e.Dir, "pg-other"), 1); err == nil || !strings.Contains(err.Error(), "outside the allowed roots") {
		t.Fatalf("purge outside roots: %v", err)
	}
	// Purge stops the standby and removes its directory.
	if err := c.Purge(ctx, sDir, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sDir); !os.IsNotExist(err) {
		t.Fatalf("data dir still there: %v", err)
	}
}

// TestAgent_ParametersAreCheckedBeforeAnythingIsMade: parameters the
// manager owns, of the wrong shape, or that the server's own binary
// refuses are 400 naming the key, and no data directory is made.
func TestAgent_ParametersAreCheckedBeforeAnythingIsMade(t *testing.T) {
	e := pgtest.NewEnv(t)
	root := filepath.Join(e.Dir, "root")
	c := startRootedAgent(t, e, root)
	dir := filepath.Join(root, "pg1", "data")
	for _, tc := range []struct {
		params map[string]string
		want   string
	}{
		{map[string]string{"archive_command": "touch /tmp/pwned"}, "archive_command: cannot be set"},
		{map[string]string{"work_mem": "1MB\narchive_command='x'"}, "control character"},
		{map[string]string{"work_mem": "lots"}, `invalid value for parameter "work_mem"`},
		{map[string]string{"max_connections": "9999999"}, `outside the valid range for parameter "max_connections"`},
		{map[string]string{"wal_compression": "maybe"}, `invalid value for parameter "wal_compression"`},
		{map[string]string{"no_such_setting": "1"}, `unrecognized configuration parameter "no_such_setting"`},
	} {
		_, err := c.Initdb(context.Background(), agent.Request{DataDir: dir, Epoch: 1, Port: pgtest.FreePort(t), Password: "x", Listen: "127.0.0.1", Parameters: tc.params})
		var ae *agent.Error
		if !asAgentError(err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Detail, tc.want) {
			t.Errorf("%v: %v, want 400 %q", tc.params, err, tc.want)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Fatalf("%v: the data directory was made", tc.params)
		}
	}
	entries, _ := os.ReadDir(root)
	for _, en := range entries {
		if strings.HasPrefix(en.Name(), ".paramcheck-") {
			t.Fatalf("check directory left behind: %s", en.Name())
		}
	}
}

// checkLockedDown checks what a provisioned server admits: over TCP only
// the allowed host, with scram-sha-256 and the right password; on its
// Unix socket (0700, in a directory only its OS user may write) only that
// OS user; and it listens on its node's host alone.
func checkLockedDown(t *testing.T, e *pgtest.Env, s *pgtest.Server) {
	t.Helper()
	hba, err := os.ReadFile(filepath.Join(s.DataDir, "pg_hba.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(hba), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch {
		case f[0] == "local" && f[len(f)-2] == "peer" && strings.HasPrefix(f[len(f)-1], "map="):
		case f[0] == "host" && f[len(f)-1] == "scram-sha-256":
		default:
			t.Errorf("pg_hba.conf line %q is neither local peer nor host scram-sha-256", line)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct{ what, dsn, want string }{
		{"no password", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=5", s.Port), "password"},
		{"a wrong password", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres password=wrong connect_timeout=5", s.Port), "password authentication failed"},
	} {
		conn, err := pgx.Connect(ctx, c.dsn)
		if err == nil {
			_ = conn.Close(ctx)
			t.Errorf("%s: connected", c.what)
		} else if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.what, err, c.want)
		}
	}
	var listen, enc, hash string
	conn, err := s.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT current_setting('listen_addresses'), current_setting('password_encryption'), rolpassword FROM pg_authid WHERE rolname = 'postgres'").Scan(&listen, &enc, &hash); err != nil {
		t.Fatal(err)
	}
	if listen != "127.0.0.1" || enc != "scram-sha-256" || !strings.HasPrefix(hash, "SCRAM-SHA-256$") {
		t.Errorf("listen_addresses %q, password_encryption %q, stored password %.14s…", listen, enc, hash)
	}
	sock := filepath.Join(filepath.Dir(s.DataDir), fmt.Sprintf(".s.PGSQL.%d", s.Port))
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket %s: %v %v", sock, fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Dir(s.DataDir)); err != nil || fi.Mode().Perm()&0o022 != 0 {
		t.Errorf("socket directory %s: %v %v", filepath.Dir(s.DataDir), fi.Mode(), err)
	}
	// Through the socket: the OS user PostgreSQL runs as gets in, and the
	// agent's own user (this test's); another OS user does not.
	out, err := e.Runner.Run(ctx, "psql", "-X", "-A", "-t", "-h", filepath.Dir(s.DataDir), "-p", fmt.Sprint(s.Port), "-U", "postgres", "-d", "postgres", "-c", "SELECT 'in'")
	if err != nil || strings.TrimSpace(out) != "in" {
		t.Errorf("psql as the OS user through the socket: %q %v", out, err)
	}
	local, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres connect_timeout=5", filepath.Dir(s.DataDir), s.Port))
	if err != nil {
		t.Errorf("the agent's user through the socket: %v", err)
	} else {
		_ = local.Close(ctx)
	}
	if os.Geteuid() == 0 {
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(nobody.Uid)
		gid, _ := strconv.Atoi(nobody.Gid)
		cmd := exec.CommandContext(ctx, filepath.Join(e.Runner.BinDir, "psql"), "-X", "-h", filepath.Dir(s.DataDir), "-p", fmt.Sprint(s.Port), "-U", "postgres", "-d", "postgres", "-c", "SELECT 1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Dir = "/"
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "Permission denied") {
			t.Errorf("psql as nobody through the socket: %v %s", err, out)
		}
	}
}
