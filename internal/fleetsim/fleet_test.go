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
