package fleetsim

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
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
	sh.Nodes[0].Down()
	sh.Servers[0].SetFault(Fault{Refuse: true})
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
