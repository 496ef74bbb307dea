package agent_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/agent"
)

const token = "0123456789abcdef-test-token"

func startAgent(t *testing.T, e *pgtest.Env) *agent.Client {
	t.Helper()
	srv, err := agent.NewServer(token, e.Runner, slog.New(slog.NewTextHandler(io.Discard, nil)), e.Dir)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return agent.NewClient(hs.URL, token)
}

func waitRows(t *testing.T, s *pgtest.Server, want int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := s.QueryInt("SELECT count(*) FROM t")
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d rows (want %d): %v\n%s", s.Name, n, want, err, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAgent_RefusesWithoutToken(t *testing.T) {
	e := pgtest.NewEnv(t)
	c := startAgent(t, e)
	for _, tok := range []string{"", "wrong-token-0123456789"} {
		bad := agent.NewClient(c.BaseURL, tok)
		_, err := bad.Status(context.Background(), "/tmp")
		var ae *agent.Error
		if !asAgentError(err, &ae) || ae.Status != http.StatusUnauthorized {
			t.Fatalf("token %q: %v", tok, err)
		}
	}
	if _, err := agent.NewServer("short", e.Runner, slog.Default()); err == nil {
		t.Fatal("short token accepted")
	}
}

func asAgentError(err error, target **agent.Error) bool {
	e, ok := err.(*agent.Error)
	if ok {
		*target = e
	}
	return ok
}

func TestAgent_BadInput(t *testing.T) {
	e := pgtest.NewEnv(t)
	c := startAgent(t, e)
	ctx := context.Background()
	p := e.StartPrimary("pg1")
	cases := []struct {
		err  error
		want string
	}{
		{func() error { _, err := c.Status(ctx, "relative/dir"); return err }(), "not a clean absolute path"},
		{func() error { _, err := c.Status(ctx, filepath.Join(e.Dir, "nothing")); return err }(), "not a PostgreSQL data directory"},
		{func() error { _, err := c.Status(ctx, "/etc"); return err }(), "outside the allowed roots"},
		{func() error { _, err := c.Stop(ctx, p.DataDir, 0, "fast"); return err }(), "epoch is required"},
		{func() error { _, err := c.Stop(ctx, p.DataDir, 1, "gentle"); return err }(), `mode "gentle"`},
		{func() error { _, err := c.Rewind(ctx, p.DataDir, 1, "", ""); return err }(), "source"},
	}
	for _, tc := range cases {
		var ae *agent.Error
		if !asAgentError(tc.err, &ae) || ae.Status != http.StatusBadRequest || !strings.Contains(ae.Detail, tc.want) {
			t.Errorf("error %v, want 400 mentioning %q", tc.err, tc.want)
		}
	}
}

// TestAgent_FenceRewindAndRejoin promotes a standby, fences the old primary
// by epoch, rewinds it from the new primary and starts it as a standby.
func TestAgent_FenceRewindAndRejoin(t *testing.T) {
	e := pgtest.NewEnv(t)
	c := startAgent(t, e)
	ctx := context.Background()
	p := e.StartPrimary("pg1")
	s := e.StartStandby("pg2", p)
	p.Exec("CREATE TABLE t (id bigint primary key)")
	p.Exec("INSERT INTO t SELECT generate_series(1, 10)")
	waitRows(t, s, 10)

	st, err := c.Status(ctx, p.DataDir)
	if err != nil || !st.Running || st.Standby || st.Control.ClusterState != "in production" || st.Control.Timeline != 1 {
		t.Fatalf("primary status %+v %v", st, err)
	}
	// Promote the standby at epoch 2; the old primary keeps writing (split
	// brain in the making) until it is fenced.
	if _, err := c.Promote(ctx, s.DataDir, 2); err != nil {
		t.Fatal(err)
	}
	s.Exec("INSERT INTO t SELECT generate_series(11, 20)")
	p.Exec("INSERT INTO t SELECT generate_series(1001, 1005)")
	// Fence at epoch 2; a command from epoch 1 is then refused.
	if _, err := c.Stop(ctx, p.DataDir, 2, "kill"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, p.DataDir, 1); !agent.IsStaleEpoch(err) {
		t.Fatalf("stale epoch accepted: %v", err)
	}
	// Rewind from the new primary and start as its standby.
	res, err := c.Rewind(ctx, p.DataDir, 2, pgtest.ConnInfo(s.Host, s.Port, "pg1"), "")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Status.Standby || res.Status.Running {
		t.Fatalf("after rewind: %+v", res.Status)
	}
	if st, err = c.Start(ctx, p.DataDir, 2); err != nil || !st.Running {
		out, _ := exec.Command("sh", "-c", "ss -ltnp; ps -eo pid,pgid,ppid,stat,cmd | grep postgres").CombinedOutput()
		t.Fatalf("start: %+v %v\n%s\n%s", st, err, p.Log(), out)
	}
	waitRows(t, p, 20) // the diverged rows 1001-1005 are gone
	if rec, err := p.InRecovery(); err != nil || !rec {
		t.Fatalf("old primary in recovery: %v %v", rec, err)
	}
	n, err := s.QueryInt("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pg1'")
	if err != nil || n != 1 {
		t.Fatalf("old primary streams from the new one: %d %v", n, err)
	}

	// configure-standby points a standby elsewhere; restart applies it.
	if _, err := c.ConfigureStandby(ctx, p.DataDir, 3, pgtest.ConnInfo(s.Host, s.Port, "pg1-again"), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Restart(ctx, p.DataDir, 3, "fast"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, err := s.QueryInt("SELECT count(*) FROM pg_stat_replication WHERE application_name = 'pg1-again'")
		if err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reconfigured standby not streaming: %d %v\n%s", n, err, p.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
