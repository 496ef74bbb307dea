package agent_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/pgctl"
)

// startLeasingAgent runs an agent that enforces primary leases.
func startLeasingAgent(t *testing.T, e *pgtest.Env) *agent.Client {
	t.Helper()
	srv, err := agent.NewServer(token, e.Runner, slog.New(slog.NewTextHandler(io.Discard, nil)), e.Dir)
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

// testLease is how long the leases of these tests last: longer than a
// request takes to reach the agent on a loaded machine (one arrived
// 332 ms after it was sent, past a lease of 200 ms, and was refused).
const testLease = time.Second

// watchPastLease waits until a lease of testLease sent at from has run
// out, by the test's clock, and then for d: the agent checks the expired
// lease about every 100 ms.
func watchPastLease(from time.Time, d time.Duration) {
	time.Sleep(time.Until(from.Add(testLease)) + d)
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
	waitFenced(t, p, 10*time.Second, "lease ran out, no standby")
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

// waitStreaming waits until the primary has a standby streaming from it.
func waitStreaming(t *testing.T, p *pgtest.Server) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := p.QueryInt("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
		if err == nil && n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby not streaming: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFenced waits (bounded) until the server in dir no longer runs.
func waitFenced(t *testing.T, s *pgtest.Server, within time.Duration, why string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for alive(s) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the primary still runs after %v", why, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLease_PrimaryWhoseStandbyCannotAcknowledgeIsFenced: a standby cut
// off from the primary (here its WAL receiver is frozen: no reset, the
// walsender still says "streaming" and its last reply is recent) is no
// reason to keep serving once the lease ran out. The agent writes WAL and
// needs a standby to acknowledge it, instead of trusting a recent
// reply_time (which a cut-off standby keeps for seconds, and which
// compares another host's clock with this one).
func TestLease_PrimaryWhoseStandbyCannotAcknowledgeIsFenced(t *testing.T) {
	e := pgtest.NewEnv(t)
	p := e.StartPrimary("pg1")
	s := e.StartStandby("pg2", p)
	c := startLeasingAgent(t, e)
	// The walsender does not give up on the silent standby during the
	// test: only the agent's own check can tell that it is cut off.
	p.Exec("ALTER SYSTEM SET wal_sender_timeout = '60s'")
	p.Exec("SELECT pg_reload_conf()")
	waitStreaming(t, p)
	pid, err := s.QueryInt("SELECT pid FROM pg_stat_wal_receiver")
	if err != nil || pid <= 0 {
		t.Fatalf("wal receiver pid: %d %v", pid, err)
	}
	if err := syscall.Kill(int(pid), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(int(pid), syscall.SIGCONT) })
	// A reply window of 10 s, as a manager of the earlier protocol asks:
	// the cut-off standby replied well within it.
	if err := c.Lease(context.Background(), p.DataDir, 1, p.DSN(), 300*time.Millisecond, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFenced(t, p, 5*time.Second, "standby frozen, lease expired")
}

// TestLease_StaleRenewalIsRefused: a renewal that arrives after the
// lease it grants has ended (queued in a frozen agent's socket, delayed in
// the network) is refused and does not keep the primary up; one from a
// manager whose clock runs ahead grants no more than the lease's length.
func TestLease_StaleRenewalIsRefused(t *testing.T) {
	e := pgtest.NewEnv(t)
	p := e.StartPrimary("pg1")
	c := startLeasingAgent(t, e)
	if err := c.Lease(context.Background(), p.DataDir, 1, p.DSN(), 300*time.Millisecond, time.Second); err != nil {
		t.Fatal(err)
	}
	err := c.LeaseFrom(context.Background(), agent.LeaseRequest{DataDir: p.DataDir, Epoch: 1, Conninfo: p.DSN(), From: time.Now().Add(-2 * time.Second), TTL: time.Second, AckWithin: time.Second, AcksNeeded: 1})
	if err == nil {
		t.Fatal("a renewal sent 2 s ago for 1 s was accepted")
	}
	waitFenced(t, p, 5*time.Second, "only a stale renewal")
	if err := c.LeaseFrom(context.Background(), agent.LeaseRequest{DataDir: p.DataDir, Epoch: 1, Conninfo: p.DSN(), From: time.Time{}, TTL: time.Second, AckWithin: time.Second, AcksNeeded: 1}); err == nil {
		t.Fatal("a renewal from before 1970 was accepted")
	}

	q := e.StartPrimary("pg3")
	if err := c.LeaseFrom(context.Background(), agent.LeaseRequest{DataDir: q.DataDir, Epoch: 1, Conninfo: q.DSN(), From: time.Now().Add(time.Hour), TTL: 300 * time.Millisecond, AckWithin: time.Second, AcksNeeded: 1}); err != nil {
		t.Fatal(err)
	}
	waitFenced(t, q, 5*time.Second, "a renewal from a clock an hour ahead")
}

// TestLease_UncheckablePrimaryIsFenced: once the lease ran out, a check
// that cannot conclude (here the server refuses the agent's role; a
// server too busy to answer in time is the same) is no standby's
// acknowledgement: the primary is killed, even with a standby streaming.
func TestLease_UncheckablePrimaryIsFenced(t *testing.T) {
	e := pgtest.NewEnv(t)
	p := e.StartPrimary("pg1")
	e.StartStandby("pg2", p)
	c := startLeasingAgent(t, e)
	waitStreaming(t, p)
	bad := strings.Replace(p.DSN(), "user=postgres", "user=no_such_role", 1)
	if err := c.Lease(context.Background(), p.DataDir, 1, bad, 300*time.Millisecond, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitFenced(t, p, 5*time.Second, "lease expired, server not checkable")
}

// TestLease_OnlyTheShardsStandbysCount: a walsender of a node the lease
// does not name (another client streaming WAL from the primary: a base
// backup's stream, a standby outside the shard) does not keep a primary
// whose lease ran out serving; the shard's own standby does.
func TestLease_OnlyTheShardsStandbysCount(t *testing.T) {
	e := pgtest.NewEnv(t)
	p := e.StartPrimary("pg1")
	e.StartStandby("pg2", p)
	c := startLeasingAgent(t, e)
	waitStreaming(t, p)
	var from time.Time
	// The standby has 2 s to acknowledge a check's commit, as in
	// TestLease_RenewedOrStreamedPrimaryKeepsServing: with 200 ms, a
	// loaded make test once saw no acknowledgement in time and the
	// primary fenced.
	lease := func(acks int, standbys ...string) error {
		t.Helper()
		from = time.Now()
		return c.LeaseFrom(context.Background(), agent.LeaseRequest{DataDir: p.DataDir, Epoch: 1, Conninfo: p.DSN(),
			From: from, TTL: testLease, AckWithin: 2 * time.Second, Standbys: standbys, AcksNeeded: acks})
	}
	for _, bad := range []struct {
		acks     int
		standbys []string
	}{{-1, []string{"pg2"}}, {3, []string{"pg2", "pg3"}}} {
		if err := lease(bad.acks, bad.standbys...); err == nil || !strings.Contains(err.Error(), "acks_needed") {
			t.Fatalf("acks_needed %d of %v: err %v, want one naming acks_needed", bad.acks, bad.standbys, err)
		}
	}
	if err := lease(1, "pg2", "pg3"); err != nil {
		t.Fatal(err)
	}
	watchPastLease(from, 700*time.Millisecond) // pg2 acknowledges at every check
	if !alive(p) {
		t.Fatal("a primary whose shard standby streams was fenced")
	}
	if err := lease(1, "pg3"); err != nil {
		t.Fatal(err)
	}
	waitFenced(t, p, 10*time.Second, "only a standby outside the lease's list streams")
}

// TestLease_AMajorityOfTheShardIsNeeded: in a shard of five, one standby
// is not enough to keep a primary whose lease ran out serving (the
// managers may see the other three detached from it and promote one).
func TestLease_AMajorityOfTheShardIsNeeded(t *testing.T) {
	e := pgtest.NewEnv(t)
	p := e.StartPrimary("pg1")
	e.StartStandby("pg2", p)
	c := startLeasingAgent(t, e)
	waitStreaming(t, p)
	if err := c.LeaseFrom(context.Background(), agent.LeaseRequest{DataDir: p.DataDir, Epoch: 1, Conninfo: p.DSN(),
		From: time.Now(), TTL: testLease, AckWithin: 200 * time.Millisecond,
		Standbys: []string{"pg2", "pg3", "pg4", "pg5"}, AcksNeeded: 2}); err != nil {
		t.Fatal(err)
	}
	waitFenced(t, p, 5*time.Second, "one standby of four streams, two needed")
}

// TestLease_PrimaryAloneKeepsServing: a shard of one node has nothing to
// fail over to, so its primary keeps serving when its lease runs out
// (acks_needed 0).
func TestLease_PrimaryAloneKeepsServing(t *testing.T) {
	e := pgtest.NewEnv(t)
	p := e.StartPrimary("pg1")
	c := startLeasingAgent(t, e)
	from := time.Now()
	if err := c.LeaseFrom(context.Background(), agent.LeaseRequest{DataDir: p.DataDir, Epoch: 1, Conninfo: p.DSN(),
		From: from, TTL: testLease, AckWithin: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	watchPastLease(from, 1300*time.Millisecond) // checked a dozen times
	if !alive(p) {
		t.Fatal("the primary of a one-node shard was fenced")
	}
}
