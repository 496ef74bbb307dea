package fleetsim

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/collector"
)

// shape is what the probe observed, without the values that differ
// between any two servers (positions, times, addresses).
type shape struct {
	InRecovery     bool
	Timeline       uint32
	TimelineFrom   string
	HasLSN         bool
	Receiver       string // its status; "" when none
	Replicas       []string
	PendingRestart int
	Archiver       bool
	History        bool
}

func shapeOf(s *collector.Sample) shape {
	out := shape{InRecovery: s.InRecovery, Timeline: s.Timeline, TimelineFrom: s.TimelineFrom, HasLSN: s.LSN() > 0,
		PendingRestart: len(s.PendingRestart), Archiver: s.Archiver != nil, History: s.HistoryFiles != nil}
	if s.Receiver != nil {
		out.Receiver = s.Receiver.Status
	}
	for _, r := range s.Replicas {
		out.Replicas = append(out.Replicas, r.State+"/"+r.SyncState)
	}
	return out
}

func probe(t *testing.T, dsn string) *collector.Sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	s, err := collector.Collect(ctx, conn, time.Now())
	if err != nil {
		t.Fatalf("probe %s: %v", dsn, err)
	}
	return s
}

// serveNode runs a simulated node on a free loopback port.
func serveNode(t *testing.T, n *Node) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := Serve(ln, n.Handler(time.Now))
	t.Cleanup(srv.Close)
	return "postgres://postgres@" + ln.Addr().String() + "/postgres?sslmode=disable"
}

// TestNode_ProbeShapeMatchesPostgreSQL: the manager's probe
// (collector.Collect) of a simulated primary and standby observes what it
// observes of a real PostgreSQL 15 primary and standby, but for the
// values that differ between any two servers.
func TestNode_ProbeShapeMatchesPostgreSQL(t *testing.T) {
	if testing.Short() {
		t.Skip("real PostgreSQL")
	}
	e := pgtest.NewEnv(t)
	p := e.StartPrimary("pg1")
	s := e.StartStandby("pg2", p)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if n, err := p.QueryInt("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"); err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the real standby does not stream")
		}
		time.Sleep(50 * time.Millisecond)
	}
	realPrimary, realStandby := shapeOf(probe(t, p.DSN())), shapeOf(probe(t, s.DSN()))

	sp := NewPrimary("pg1", "127.0.0.1", 5432, 0x3000060)
	ss := NewStandby("pg2", "127.0.0.1", 5433, sp)
	sp.Advance(1024)
	simPrimary, simStandby := shapeOf(probe(t, serveNode(t, sp))), shapeOf(probe(t, serveNode(t, ss)))

	// Both archive (pgtest's servers run with archive_mode on, as
	// provisioned nodes do).
	if diff := cmp.Diff(realPrimary, simPrimary); diff != "" {
		t.Errorf("primary (-real +simulated):\n%s", diff)
	}
	if diff := cmp.Diff(realStandby, simStandby); diff != "" {
		t.Errorf("standby (-real +simulated):\n%s", diff)
	}
}
