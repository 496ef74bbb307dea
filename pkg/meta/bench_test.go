package meta

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

var benchClients = []int{1, 64}

// runClients spreads b.N operations over n concurrent clients and reports
// the throughput.
func runClients(b *testing.B, n int, op func(i int64) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < n; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if err := op(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "cmds/s")
}

// BenchmarkApply measures topology commands (CreateCluster, each with its
// event) through Store.Apply on the leader of a 3-replica group over TCP on
// loopback with raft-boltdb on disk and the default timing.
func BenchmarkApply(b *testing.B) {
	for _, clients := range benchClients {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			g := newTCPGroup(b, 3, DefaultTiming())
			leader := g.leader()
			ctx := context.Background()
			runClients(b, clients, func(i int64) error {
				return leader.Apply(ctx, &CreateCluster{Name: fmt.Sprintf("c%d", i), Settings: ClusterSettings{PGUser: "postgres", ReplicationUser: "replicator", AutoFailover: true}})
			})
		})
	}
}

// countFSM is the smallest FSM: it counts entries.
type countFSM struct{ n atomic.Uint64 }

func (f *countFSM) Apply(*raft.Log) any                 { f.n.Add(1); return nil }
func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) { return &snapshot{data: []byte("{}")}, nil }
func (f *countFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

// BenchmarkRawRaftApply is the baseline of BenchmarkApply: plain
// hashicorp/raft + raft-boltdb with the same timing, log cache, transport
// and an entry of the same size, applied to a counting FSM.
func BenchmarkRawRaftApply(b *testing.B) {
	payload, err := Encode(&CreateCluster{Stamp: Stamp{At: time.Now()}, Name: "c1000000", Settings: ClusterSettings{PGUser: "postgres", ReplicationUser: "replicator", AutoFailover: true}})
	if err != nil {
		b.Fatal(err)
	}
	for _, clients := range benchClients {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			rafts := startRawGroup(b, 3)
			var leader *raft.Raft
			poll(b, 10*time.Second, "raw leader", func() bool {
				for _, r := range rafts {
					if r.State() == raft.Leader {
						leader = r
						return true
					}
				}
				return false
			})
			runClients(b, clients, func(int64) error {
				return leader.Apply(payload, 10*time.Second).Error()
			})
		})
	}
}

func startRawGroup(b *testing.B, n int) []*raft.Raft {
	timing := DefaultTiming()
	var servers []raft.Server
	for i := 0; i < n; i++ {
		servers = append(servers, raft.Server{ID: raft.ServerID(fmt.Sprintf("r%d", i)), Address: raft.ServerAddress(freeTCPAddr(b)), Suffrage: raft.Voter})
	}
	var out []*raft.Raft
	for _, srv := range servers {
		dir := b.TempDir()
		rc := raft.DefaultConfig()
		rc.LocalID = srv.ID
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = timing.HeartbeatTimeout, timing.ElectionTimeout, timing.LeaderLeaseTimeout
		rc.CommitTimeout, rc.MaxAppendEntries = timing.CommitTimeout, timing.MaxAppendEntries
		rc.SnapshotInterval, rc.SnapshotThreshold, rc.TrailingLogs = timing.SnapshotInterval, timing.SnapshotThreshold, timing.TrailingLogs
		rc.Logger = newRaftLogger(discardLogger())
		bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
		if err != nil {
			b.Fatal(err)
		}
		cached, err := raft.NewLogCache(512, bolt)
		if err != nil {
			b.Fatal(err)
		}
		snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, rc.Logger)
		if err != nil {
			b.Fatal(err)
		}
		addr, _ := net.ResolveTCPAddr("tcp", string(srv.Address))
		trans, err := raft.NewTCPTransportWithLogger(string(srv.Address), addr, 3, 10*time.Second, rc.Logger)
		if err != nil {
			b.Fatal(err)
		}
		r, err := raft.NewRaft(rc, &countFSM{}, cached, bolt, snaps, trans)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			_ = r.Shutdown().Error()
			_ = trans.Close()
			_ = bolt.Close()
		})
		out = append(out, r)
	}
	return out
}
