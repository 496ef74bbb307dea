package agent_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/pgctl"
)

// startLeasingAgent runs an agent that enforces primary leases.
func startLeasingAgent(t *testing.T, e *pgtest.Env) *agent.Client {
	t.Helper()
	srv, err := agent.NewServer(token, e.Runner, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		srv.RunLeases(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		hs.Close()
	})
	return agent.NewClient(hs.URL, token)
}

func alive(s *pgtest.Server) bool {
	_, ok := pgctl.PostmasterPID(s.DataDir)
	return ok
}

// TestLease_ExpiredPrimaryWithoutStandbysIsFenced: nobody renews the lease
// and no standby streams from the primary: a failover may be under way,
// so the agent kills it.
func TestLease_ExpiredPrimaryWithoutStandbysIsFenced(t *testing.T) {
	e := pgtest.NewEnv(t)
	p := e.StartPrimary("pg1")
	c := startLeasingAgent(t, e)
	if err := c.Lease(context.Background(), p.DataDir, 1, p.DSN(), 300*time.Millisecond, time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(p) {
		if time.Now().After(deadline) {
			t.Fatal("the primary still runs 10 s after its lease ran out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLease_RenewedOrStreamedPrimaryKeepsServing: a renewed lease keeps
// the primary up; once renewals stop, a standby that streams from it
// keeps it up too (with the managers all down, no failover can happen).
func TestLease_RenewedOrStreamedPrimaryKeepsServing(t *testing.T) {
	e := pgtest.NewEnv(t)
	p := e.StartPrimary("pg1")
	s := e.StartStandby("pg2", p)
	c := startLeasingAgent(t, e)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := p.QueryInt("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND reply_time > now() - interval '1 second'")
		if err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby not streaming: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := 0; i < 10; i++ {
		if err := c.Lease(context.Background(), p.DataDir, 1, p.DSN(), 300*time.Millisecond, 2*time.Second); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // the lease ran out long ago
	if !alive(p) {
		t.Fatal("a primary with a streaming standby was fenced")
	}
	if err := c.Lease(context.Background(), s.DataDir, 1, s.DSN(), 100*time.Millisecond, time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if !alive(s) {
		t.Fatal("a standby was fenced on lease expiry")
	}
	if err := c.Lease(context.Background(), p.DataDir, 1, p.DSN(), 0, time.Second); err == nil {
		t.Fatal("a lease of 0 ms was accepted")
	}
}
