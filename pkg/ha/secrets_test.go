package ha_test

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/authtest"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/ha"
)

// TestSecrets_PasswordNeverLeavesTheState runs a cluster with a password
// through a switchover, a failover and the old primary's return (a
// rewind or a restart as a standby, whose commands carry the password):
// the password is in no API answer, event, operation or log line of any
// replica or the agent, at debug level, and in no file of any replica's
// data directory (raft.db, the snapshots) after each took a snapshot.
func TestSecrets_PasswordNeverLeavesTheState(t *testing.T) {
	const password = "Pw-4f9c1e-never-shown"
	var logs lockedBuffer
	e := newGroup(t, ha.Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	// The test servers trust local connections: the password is carried
	// everywhere a real one would be, without being needed.
	e.startShard(map[string]any{"name": "app", "pg_user": "postgres", "pg_password": password})
	e.waitStandbyOf("pg2", "pg1", 10*time.Second)

	var ref api.OperationRef
	e.mustDo("POST", "/v1/clusters/app/shards/s1/switchover", map[string]any{"to": "pg2"}, http.StatusAccepted, &ref)
	if op := e.waitOperation(ref.ID, 60*time.Second); op.State != "succeeded" {
		t.Fatalf("switchover %s: %s", op.State, op.Error)
	}
	e.waitStandbyOf("pg1", "pg2", 60*time.Second)
	e.nodes["pg2"].KillPostmaster()
	next := e.waitPrimaryNot("pg2", 30*time.Second)
	e.waitStandbyOf("pg2", next, 60*time.Second)
	e.waitShardState("healthy", 30*time.Second)

	e.do("GET", "/v1/events?limit=10000", nil, nil)
	e.do("GET", "/v1/operations", nil, nil)
	e.do("GET", "/v1/clusters/app", nil, nil)
	e.do("GET", "/v1/clusters/app/shards/s1", nil, nil)
	e.do("GET", "/v1/audit?limit=10000", nil, nil)
	for what, text := range map[string]string{"API answers": e.answers.String(), "logs": logs.String()} {
		if i := strings.Index(text, password); i >= 0 {
			from, to := max(0, i-300), min(len(text), i+100)
			t.Fatalf("the password is in the %s:\n…%s…", what, text[from:to])
		}
	}
	files := 0
	for i, r := range e.reps {
		if err := r.Store.Snapshot(); err != nil {
			t.Fatal(err)
		}
		files += authtest.NoFileHolds(t, e.dirs[i], password)
	}
	if files < 2*len(e.reps) {
		t.Fatalf("only %d files in the replicas' data directories: no raft.db or snapshot to look at", files)
	}
	t.Logf("captured %d bytes of logs (%d REDACTED), %d bytes of answers", len(logs.String()), strings.Count(logs.String(), "REDACTED"), len(e.answers.String()))
	if len(logs.String()) == 0 || !strings.Contains(e.answers.String(), "switchover") {
		t.Fatal("nothing was captured: the test would pass blind")
	}
}
