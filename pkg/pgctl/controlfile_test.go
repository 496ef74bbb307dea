package pgctl_test

import (
	"context"
	"testing"

	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/pgctl"
)

// TestReadControlFile_AgreesWithPgControldata reads a running primary, a
// running standby and a stopped primary both ways.
func TestReadControlFile_AgreesWithPgControldata(t *testing.T) {
	e := pgtest.NewEnv(t)
	p := e.StartPrimary("pg1")
	s := e.StartStandby("pg2", p)
	p.Exec("CHECKPOINT")
	check := func(dir, wantState string) {
		t.Helper()
		want, err := e.Runner.ReadControlData(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgctl.ReadControlFile(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got != want || got.ClusterState != wantState {
			t.Fatalf("%s: read %+v, pg_controldata %+v (want state %q)", dir, got, want, wantState)
		}
	}
	check(p.DataDir, "in production")
	check(s.DataDir, "in archive recovery")
	if err := e.Runner.Stop(context.Background(), p.DataDir, "fast"); err != nil {
		t.Fatal(err)
	}
	check(p.DataDir, "shut down")
	if _, err := pgctl.ReadControlFile(t.TempDir()); err == nil {
		t.Fatal("a directory without pg_control was read")
	}
}
