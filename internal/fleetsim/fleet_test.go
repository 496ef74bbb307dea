package fleetsim

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/clustermgr/clustermgr/pkg/collector"
)

// TestFleet_ProbeEveryNode: a fleet of 300 nodes (100 shards of 3) in
// this process answers the manager's probe of every node, primaries as
// primaries with their two standbys streaming, standbys as standbys
// streaming from their primary; a hung shard's nodes time out while the
// others answer.
func TestFleet_ProbeEveryNode(t *testing.T) {
	f, err := NewFleet("127.0.0.1", 100, 3, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Nodes() != 300 {
		t.Fatalf("%d nodes", f.Nodes())
	}
	hung := f.Shards[7]
	for _, s := range hung.Servers {
		s.SetFault(Fault{Hang: true})
	}
	var mu sync.Mutex
	var problems []string
	timeouts := 0
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, sh := range f.Shards {
		for i, n := range sh.Nodes {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				// A hung node never answers: a short wait shows it. A
				// healthy one gets as long as a loaded machine running
				// the race detector needs.
				wait := 10 * time.Second
				if sh == hung {
					wait = 300 * time.Millisecond
				}
				ctx, cancel := context.WithTimeout(context.Background(), wait)
				defer cancel()
				s, err := probeNode(ctx, n)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case sh == hung:
					if err == nil {
						problems = append(problems, sh.Name+"/"+n.Name+" answered while hung")
					}
					timeouts++
				case err != nil:
					problems = append(problems, fmt.Sprintf("%s/%s: %v", sh.Name, n.Name, err))
				case i == 0 && (s.InRecovery || len(s.Replicas) != 2):
					problems = append(problems, fmt.Sprintf("%s/%s: primary sample %+v", sh.Name, n.Name, s))
				case i > 0 && (!s.InRecovery || s.Receiver == nil || s.Receiver.SenderPort != sh.Nodes[0].Port):
					problems = append(problems, fmt.Sprintf("%s/%s: standby sample %+v", sh.Name, n.Name, s))
				}
			}()
		}
	}
	wg.Wait()
	if len(problems) > 0 || timeouts != 3 {
		t.Fatalf("%d timeouts; %v", timeouts, problems)
	}
}

func probeNode(ctx context.Context, n *Node) (*collector.Sample, error) {
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s:%d/postgres?sslmode=disable", n.Host, n.Port))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	return collector.Collect(ctx, conn, time.Now())
}

// TestFleet_CrashAndPromote: a crashed primary's standbys stop
// streaming; pg_promote makes a standby the primary of timeline 2, with
// the history file the manager's probe reads.
func TestFleet_CrashAndPromote(t *testing.T) {
	f, err := NewFleet("127.0.0.1", 1, 3, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sh := f.Shards[0]
	sh.Crash(0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := probeNode(ctx, sh.Nodes[0]); err == nil {
		t.Fatal("the crashed primary answered")
	}
	s, err := probeNode(ctx, sh.Nodes[1])
	if err != nil || !s.InRecovery || s.Receiver != nil {
		t.Fatalf("standby of a crashed primary: %+v %v", s, err)
	}
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s:%d/postgres?sslmode=disable", sh.Nodes[1].Host, sh.Nodes[1].Port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT pg_promote(false)"); err != nil {
		t.Fatal(err)
	}
	var inRecovery bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || inRecovery {
		t.Fatalf("after pg_promote: in recovery %v, %v", inRecovery, err)
	}
	s, err = collector.Collect(ctx, conn, time.Now())
	if err != nil || s.InRecovery || s.Timeline != 2 || s.TimelineFrom != collector.TimelineFromWALFile || len(s.History) != 1 || s.History[0].Timeline != 1 {
		t.Fatalf("promoted: %+v %v", s, err)
	}
	if _, ok := s.HistoryFiles[collector.HistoryFileName(2)]; !ok {
		t.Fatalf("history files %v", s.HistoryFiles)
	}
}

// TestFleet_RepointAfterPromotion: after a promotion the other standby
// is pointed at the new primary as a failover does it (ALTER SYSTEM SET
// primary_conninfo and a reload); it streams from there on the new
// timeline, and IDENTIFY_SYSTEM on a replication connection names the
// timeline it replays.
func TestFleet_RepointAfterPromotion(t *testing.T) {
	f, err := NewFleet("127.0.0.1", 1, 3, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sh := f.Shards[0]
	sh.Crash(0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	exec := func(n *Node, stmts ...string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s:%d/postgres?sslmode=disable", n.Host, n.Port))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
	exec(sh.Nodes[1], "ALTER SYSTEM SET synchronous_standby_names = ''", "SELECT pg_reload_conf()", "SELECT pg_promote(false)")
	sh.Nodes[1].Advance(1 << 20)
	exec(sh.Nodes[2], fmt.Sprintf("ALTER SYSTEM SET primary_conninfo = 'host=%s port=%d user=postgres application_name=pg3 password=''it''''s'' connect_timeout=2'", sh.Nodes[1].Host, sh.Nodes[1].Port), "SELECT pg_reload_conf()")
	if up := sh.Nodes[2].Upstream(); up != sh.Nodes[1] {
		t.Fatalf("pg3 streams from %v", up)
	}
	s, err := probeNode(ctx, sh.Nodes[2])
	if err != nil || s.Receiver == nil || s.Receiver.SenderPort != sh.Nodes[1].Port || s.Timeline != 2 {
		t.Fatalf("pg3 after the repoint: %+v %v", s, err)
	}
	p, err := probeNode(ctx, sh.Nodes[1])
	if err != nil || len(p.Replicas) != 1 || p.Replicas[0].AppName != "pg3" {
		t.Fatalf("new primary: %+v %v", p, err)
	}
	// Pointed at nothing: IDENTIFY_SYSTEM still names its timeline.
	exec(sh.Nodes[2], "ALTER SYSTEM SET primary_conninfo = ''")
	conn, err := pgconn.Connect(ctx, fmt.Sprintf("postgres://postgres@%s:%d/postgres?sslmode=disable&replication=true", sh.Nodes[2].Host, sh.Nodes[2].Port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tl, flush, err := collector.IdentifySystem(ctx, conn)
	if err != nil || tl != 2 || flush == 0 {
		t.Fatalf("IDENTIFY_SYSTEM: timeline %d flush %v %v", tl, flush, err)
	}
}

// TestFleet_ProbePeriods: the fleet counts the time between two probes
// of a node on one connection, not the probes of fresh connections, by
// the connection's application_name.
func TestFleet_ProbePeriods(t *testing.T) {
	f, err := NewFleetFrom("127.0.0.1", 5, 1, 2, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Shards[0].Name != "s5" {
		t.Fatalf("first shard %s", f.Shards[0].Name)
	}
	n := f.Shards[0].Nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 2 {
		if _, err := probeNode(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if c := f.Probes("").Count(); c != 0 {
		t.Fatalf("%d periods counted from single probes of fresh connections", c)
	}
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s:%d/postgres?sslmode=disable&application_name=clustermgr+m2", n.Host, n.Port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for i := range 3 {
		if i > 0 {
			time.Sleep(30 * time.Millisecond)
		}
		if _, err := collector.Collect(ctx, conn, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if apps := fmt.Sprint(f.ProbeApps()); apps != "[ clustermgr m2]" {
		t.Fatalf("probed by %s", apps)
	}
	p := f.Probes("clustermgr m2")
	if c, p50 := p.Count(), p.Quantile(0.5); c != 2 || p50 < 30*time.Millisecond || p50 > time.Second {
		t.Fatalf("%d periods, median %v; want 2 of about 30 ms", c, p50)
	}
	p.Reset()
	if c := p.Count(); c != 0 {
		t.Fatalf("%d after a reset", c)
	}
}
