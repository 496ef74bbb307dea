package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	if _, err := c.Initdb(ctx, agent.Request{DataDir: pDir, Epoch: 1, Port: pPort, AllowHosts: []string{"127.0.0.1"},
		Parameters: map[string]string{"max_connections": "30"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, pDir, 1); err != nil {
		t.Fatal(err)
	}
	primary := e.Adopt("pg1", "127.0.0.1", pPort, pDir)
	n, err := primary.QueryInt("SELECT current_setting('max_connections')::int")
	if err != nil || n != 30 {
		t.Fatalf("primary settings: %d %v", n, err)
	}
	if _, err := primary.QueryInt("SELECT 1 FROM pg_create_physical_replication_slot('pg2')"); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres", pPort)
	if _, err := c.Basebackup(ctx, agent.Request{DataDir: sDir, Epoch: 1, Port: sPort, Source: src, PrimarySlotName: "pg2", AppName: "pg2"}); err != nil {
		t.Fatal(err)
	}
	e.Adopt("pg2", "127.0.0.1", sPort, sDir)
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
		{agent.Request{DataDir: filepath.Join(e.Dir, "elsewhere", "data"), Epoch: 1, Port: 5999}, "outside the allowed roots"},
		{agent.Request{DataDir: root, Epoch: 1, Port: 5999}, "outside the allowed roots"},
		{agent.Request{DataDir: pDir, Epoch: 1, Port: 5999}, "exists and is not empty"},
		{agent.Request{DataDir: filepath.Join(root, "x"), Epoch: 1, Port: 0}, "port 0 is out of range"},
		{agent.Request{DataDir: filepath.Join(root, "x"), Epoch: 1, Port: pPort}, "is in use on this host"},
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
		_, err := c.Initdb(context.Background(), agent.Request{DataDir: dir, Epoch: 1, Port: pgtest.FreePort(t), Parameters: tc.params})
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
