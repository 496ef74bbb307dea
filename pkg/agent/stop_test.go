package agent_test

import (
	"context"
	"strings"
	"testing"

	"github.com/clustermgr/clustermgr/internal/pgtest"
)

// TestStopUntilCheckpoint answers with the shutdown checkpoint of a clean
// fast stop, and refuses a server that died without one: its control
// file's checkpoint is not the end of its WAL, so a switchover must not
// take it as such.
func TestStopUntilCheckpoint(t *testing.T) {
	e := pgtest.NewEnv(t)
	a := startAgent(t, e)
	p := e.StartPrimary("pg1")
	p.Exec("CREATE TABLE t (id int)")
	st, err := a.StopUntilCheckpoint(context.Background(), p.DataDir, 1)
	if err != nil || st.Control.ClusterState != "shut down" || st.Control.CheckpointLSN == "" {
		t.Fatalf("clean stop: %+v %v", st, err)
	}
	if _, err := a.Stop(context.Background(), p.DataDir, 1, "fast"); err != nil {
		t.Fatalf("waiting for the postmaster to exit: %v", err)
	}

	q := e.StartPrimary("pg2")
	q.Exec("CREATE TABLE t (id int)")
	q.KillPostmaster()
	if _, err := a.StopUntilCheckpoint(context.Background(), q.DataDir, 1); err == nil || !strings.Contains(err.Error(), "without a shutdown checkpoint") {
		t.Fatalf("a killed server: %v", err)
	}
}
