package meta

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/fencing"
)

func testTiming() Timing {
	t := DefaultTiming()
	t.HeartbeatTimeout = 150 * time.Millisecond
	t.ElectionTimeout = 150 * time.Millisecond
	t.LeaderLeaseTimeout = 150 * time.Millisecond
	t.CommitTimeout = 5 * time.Millisecond
	return t
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func freeTCPAddr(t testing.TB) string {
	t.Helper()
	// Outside the ephemeral range: a replica restarts on its address.
	return fmt.Sprintf("127.0.0.1:%d", pgtest.FreePort(t))
}

// group is an in-process Raft group for tests.
type group struct {
	t      testing.TB
	cfgs   []Config
	stores []*Store
	inmem  []*raft.InmemTransport
}

// newTCPGroup opens n replicas over TCP on loopback with data on disk.
func newTCPGroup(t testing.TB, n int, timing Timing, tasks ...LeaderTask) *group {
	t.Helper()
	g := &group{t: t}
	var peers []Peer
	for i := 0; i < n; i++ {
		peers = append(peers, Peer{ID: fmt.Sprintf("m%d", i+1), RaftAddr: freeTCPAddr(t)})
	}
	for i, p := range peers {
		g.cfgs = append(g.cfgs, Config{NodeID: p.ID, DataDir: t.TempDir(), RaftAddr: p.RaftAddr,
			APIAddr: fmt.Sprintf("http://127.0.0.1:%d", 9001+i), Peers: peers, Timing: timing, Logger: discardLogger(), LeaderTasks: tasks})
	}
	g.openAll()
	t.Cleanup(g.closeAll)
	return g
}

// newInmemGroup opens n replicas over raft's in-memory transport, which can
// be partitioned.
func newInmemGroup(t testing.TB, n int) *group {
	t.Helper()
	g := &group{t: t}
	var peers []Peer
	for i := 0; i < n; i++ {
		addr, trans := raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("inmem-%d", i+1)))
		g.inmem = append(g.inmem, trans)
		peers = append(peers, Peer{ID: fmt.Sprintf("m%d", i+1), RaftAddr: string(addr)})
	}
	for i := range g.inmem {
		for j := range g.inmem {
			if i != j {
				g.inmem[i].Connect(g.inmem[j].LocalAddr(), g.inmem[j])
			}
		}
	}
	for i, p := range peers {
		g.cfgs = append(g.cfgs, Config{NodeID: p.ID, RaftAddr: p.RaftAddr, APIAddr: fmt.Sprintf("http://127.0.0.1:%d", 9001+i),
			Peers: peers, Timing: testTiming(), Transport: g.inmem[i], InMemory: true, Logger: discardLogger()})
	}
	g.openAll()
	t.Cleanup(g.closeAll)
	return g
}

func (g *group) openAll() {
	g.t.Helper()
	g.stores = make([]*Store, len(g.cfgs))
	for i := range g.cfgs {
		g.open(i)
	}
}

func (g *group) open(i int) {
	g.t.Helper()
	s, err := Open(g.cfgs[i])
	if err != nil {
		g.t.Fatalf("open %s: %v", g.cfgs[i].NodeID, err)
	}
	g.stores[i] = s
}

func (g *group) closeAll() {
	for _, s := range g.stores {
		if s != nil {
			_ = s.Close()
		}
	}
}

// leader waits for exactly one leader among the open stores (skipping the
// excluded indexes) that every other open store knows, with its API
// address recorded.
func (g *group) leader(exclude ...int) *Store {
	g.t.Helper()
	skip := map[int]bool{}
	for _, i := range exclude {
		skip[i] = true
	}
	var leader *Store
	poll(g.t, 10*time.Second, "an agreed leader", func() bool {
		leader = nil
		for i, s := range g.stores {
			if s == nil || skip[i] {
				continue
			}
			if s.IsLeader() {
				if leader != nil {
					return false
				}
				leader = s
			}
		}
		if leader == nil {
			return false
		}
		for i, s := range g.stores {
			if s == nil || skip[i] {
				continue
			}
			if id, api := s.Leader(); id != leader.ID() || api != leader.APIAddr() {
				return false
			}
		}
		return true
	})
	return leader
}

// apply applies cmd at the group's leader, and again at the next leader
// while the one asked is no longer the leader (an election under load); a
// conflict on a later try means an earlier one was committed before the
// leadership moved.
func (g *group) apply(cmd Command) {
	g.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for try := 0; ; try++ {
		err := g.leader().Apply(context.Background(), cmd)
		if err == nil || (try > 0 && KindOf(err) == KindConflict) {
			return
		}
		if !IsNotLeader(err) || time.Now().After(deadline) {
			g.t.Fatalf("apply %T: %v", cmd, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func poll(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hasCluster(s *Store, name string) bool {
	found := false
	_ = s.View(context.Background(), Stale, func(st *State) error {
		_, found = st.Clusters[name]
		return nil
	})
	return found
}

func clusterCount(s *Store) int {
	n := 0
	_ = s.View(context.Background(), Stale, func(st *State) error { n = len(st.Clusters); return nil })
	return n
}

func TestGroup_ElectsOneLeaderAndReplicatesWrites(t *testing.T) {
	g := newTCPGroup(t, 3, testTiming())
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		g.apply(&CreateCluster{Name: fmt.Sprintf("c%d", i)})
	}
	for _, s := range g.stores {
		poll(t, 5*time.Second, "replication to "+s.ID(), func() bool { return clusterCount(s) == 10 })
	}
	// Leader and linearizable reads are served by the leader.
	leader := g.leader()
	if err := leader.View(ctx, Linearizable, func(st *State) error { return nil }); err != nil {
		t.Fatal(err)
	}
	info, err := leader.Info()
	if err != nil || info.State != "Leader" || len(info.Members) != 3 || info.AppliedIndex < info.CommitIndex-1 {
		t.Fatalf("info %+v %v", info, err)
	}
}

func TestGroup_FollowerRefusesWritesWithLeaderAddress(t *testing.T) {
	g := newTCPGroup(t, 3, testTiming())
	leader := g.leader()
	for _, s := range g.stores {
		if s == leader {
			continue
		}
		err := s.Apply(context.Background(), &CreateCluster{Name: "x"})
		nl, ok := err.(*NotLeaderError)
		if !ok || nl.LeaderID != leader.ID() || nl.LeaderAPIAddr != leader.APIAddr() {
			t.Fatalf("follower apply: %v", err)
		}
		for _, c := range []Consistency{LeaderRead, Linearizable} {
			if err := s.View(context.Background(), c, func(*State) error { return nil }); !IsNotLeader(err) {
				t.Fatalf("follower read at %d: %v", c, err)
			}
		}
		if err := s.View(context.Background(), Stale, func(*State) error { return nil }); err != nil {
			t.Fatalf("stale read on follower: %v", err)
		}
	}
}

func TestGroup_LeaderStoppedNewLeaderKeepsState(t *testing.T) {
	g := newTCPGroup(t, 3, testTiming())
	old := g.leader()
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if err := old.Apply(ctx, &CreateCluster{Name: fmt.Sprintf("c%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	idx := -1
	for i, s := range g.stores {
		if s == old {
			idx = i
		}
	}
	_ = old.Close()
	g.stores[idx] = nil
	next := g.leader()
	if next == old {
		t.Fatal("old leader still leads")
	}
	if n := clusterCount(next); n != 5 {
		t.Fatalf("new leader has %d clusters", n)
	}
	if err := next.Apply(ctx, &CreateCluster{Name: "after"}); err != nil {
		t.Fatalf("write on new leader: %v", err)
	}
	// The stopped replica comes back from disk and catches up.
	g.open(idx)
	poll(t, 5*time.Second, "restarted replica to catch up", func() bool { return hasCluster(g.stores[idx], "after") })
}

func TestGroup_AllRestartedFromDiskKeepState(t *testing.T) {
	g := newTCPGroup(t, 3, testTiming())
	ctx := context.Background()
	pw := seal(t, testKeys, PasswordPurpose("orders"), "pw")
	g.apply(&CreateCluster{Name: "orders", Settings: ClusterSettings{PGPassword: pw}})
	g.apply(twoNodeShard("orders", "s1", 5432))
	for _, s := range g.stores {
		poll(t, 5*time.Second, "replication", func() bool { return hasCluster(s, "orders") })
	}
	g.closeAll()
	g.openAll()
	leader := g.leader()
	if err := leader.View(ctx, Linearizable, func(st *State) error {
		c := st.Clusters["orders"]
		if c == nil || c.Settings.PGPassword != pw || len(c.Shards["s1"].Nodes) != 2 {
			return fmt.Errorf("state after restart: %+v", c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	g.apply(&CreateCluster{Name: "after-restart"})
}

func TestGroup_FourthReplicaJoinsAndIsRemoved(t *testing.T) {
	g := newTCPGroup(t, 3, testTiming())
	leader := g.leader()
	ctx := context.Background()
	if err := leader.Apply(ctx, &CreateCluster{Name: "before-join"}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{NodeID: "m4", DataDir: t.TempDir(), RaftAddr: freeTCPAddr(t), APIAddr: "http://127.0.0.1:9004", Timing: testTiming(), Logger: discardLogger()}
	s4, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s4.Close() })
	for i := 0; i < 2; i++ { // joining twice is fine
		if err := leader.Join(ctx, "m4", cfg.RaftAddr, cfg.APIAddr); err != nil {
			t.Fatalf("join %d: %v", i, err)
		}
	}
	if err := leader.Join(ctx, "m5", cfg.RaftAddr, "http://x"); KindOf(err) != KindConflict {
		t.Fatalf("second id at the same address: %v", err)
	}
	poll(t, 5*time.Second, "m4 to receive the state", func() bool { return hasCluster(s4, "before-join") })
	info, err := leader.Info()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range info.Members {
		if m.ID == "m4" {
			found = m.Voter && m.APIAddr == cfg.APIAddr && m.RaftAddr == cfg.RaftAddr
		}
	}
	if !found || len(info.Members) != 4 {
		t.Fatalf("members after join: %+v", info.Members)
	}
	for i := 0; i < 2; i++ { // removing twice is fine
		if err := leader.Remove(ctx, "m4"); err != nil {
			t.Fatalf("remove %d: %v", i, err)
		}
	}
	info, _ = leader.Info()
	if len(info.Members) != 3 {
		t.Fatalf("members after remove: %+v", info.Members)
	}
	if err := leader.Apply(ctx, &CreateCluster{Name: "after-remove"}); err != nil {
		t.Fatal(err)
	}
}

func TestGroup_PartitionedLeaderCannotServeLinearizableRead(t *testing.T) {
	g := newInmemGroup(t, 3)
	old := g.leader()
	ctx := context.Background()
	if err := old.Apply(ctx, &CreateCluster{Name: "before"}); err != nil {
		t.Fatal(err)
	}
	oldIdx := 0
	for i, s := range g.stores {
		if s == old {
			oldIdx = i
		}
	}
	// Cut the old leader off from both followers, both ways.
	g.inmem[oldIdx].DisconnectAll()
	for i, tr := range g.inmem {
		if i != oldIdx {
			tr.Disconnect(g.inmem[oldIdx].LocalAddr())
		}
	}
	// The majority side elects a leader that takes writes and serves
	// linearizable reads.
	next := g.leader(oldIdx)
	if err := next.Apply(ctx, &CreateCluster{Name: "after"}); err != nil {
		t.Fatal(err)
	}
	if err := next.View(ctx, Linearizable, func(st *State) error {
		if _, ok := st.Clusters["after"]; !ok {
			return fmt.Errorf("missing")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The old leader, which has not seen that write, must not serve a
	// linearizable read of its state. (A leader read may be served by a
	// deposed leader for up to a lease timeout; see DESIGN.md.)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := old.View(rctx, Linearizable, func(st *State) error {
		if _, ok := st.Clusters["after"]; !ok {
			return fmt.Errorf("stale state served")
		}
		return nil
	})
	if !IsNotLeader(err) {
		t.Fatalf("partitioned old leader: %v", err)
	}
	// Healed, it follows the new leader and catches up.
	for i, tr := range g.inmem {
		if i != oldIdx {
			tr.Connect(g.inmem[oldIdx].LocalAddr(), g.inmem[oldIdx])
			g.inmem[oldIdx].Connect(tr.LocalAddr(), tr)
		}
	}
	poll(t, 5*time.Second, "old leader to catch up", func() bool { return hasCluster(old, "after") })
}

func TestGroup_TransferLeadershipToNamedMember(t *testing.T) {
	g := newTCPGroup(t, 3, testTiming())
	leader := g.leader()
	var target *Store
	for _, s := range g.stores {
		if s != leader {
			target = s
			break
		}
	}
	if err := leader.TransferLeadership(context.Background(), target.ID()); err != nil {
		t.Fatal(err)
	}
	if got := g.leader(); got != target {
		t.Fatalf("leader %s, want %s", got.ID(), target.ID())
	}
	if err := target.TransferLeadership(context.Background(), "m9"); KindOf(err) != KindNotFound {
		t.Fatalf("transfer to unknown member: %v", err)
	}
}

func TestGroup_LeaderTasksStopOnLossOfLeadership(t *testing.T) {
	var running, started, stopped atomic.Int32
	var terms sync.Map // term → started
	task := func(ctx context.Context) {
		terms.Store(fencing.Term(ctx), true)
		started.Add(1)
		running.Add(1)
		<-ctx.Done()
		running.Add(-1)
		stopped.Add(1)
	}
	g := newTCPGroup(t, 3, testTiming(), task)
	leader := g.leader()
	poll(t, 5*time.Second, "task to start on the leader", func() bool { return running.Load() == 1 })
	if err := leader.TransferLeadership(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	next := g.leader()
	if next == leader {
		t.Fatal("leadership did not move")
	}
	// The old term's task stopped and exactly one runs, on the new leader.
	poll(t, 5*time.Second, "one task per term", func() bool { return started.Load() == 2 && stopped.Load() == 1 && running.Load() == 1 })
	// Each term's work carries that term, the fencing token's first part.
	info, err := next.Info()
	if err != nil {
		t.Fatal(err)
	}
	var seen []uint64
	terms.Range(func(k, _ any) bool { seen = append(seen, k.(uint64)); return true })
	if _, ok := terms.Load(info.Term); !ok || len(seen) != 2 || slices.Contains(seen, 0) {
		t.Fatalf("leader tasks carried terms %v; the new leader's term is %d", seen, info.Term)
	}
	// Closing the leader stops its task; closing twice is fine.
	for i, s := range g.stores {
		if s == next {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			g.stores[i] = nil
		}
	}
	if stopped.Load() != 2 {
		t.Fatalf("after close: started %d stopped %d", started.Load(), stopped.Load())
	}
}

// TestGroup_RefusedCommandIsNotProposed: the leader checks a command
// against its state before proposing it; one the state refuses writes
// nothing to the log, however large.
func TestGroup_RefusedCommandIsNotProposed(t *testing.T) {
	g := newInmemGroup(t, 3)
	leader := g.leader()
	ctx := context.Background()
	if err := leader.Apply(ctx, &CreateCluster{Name: "app"}); err != nil {
		t.Fatal(err)
	}
	before, err := leader.Info()
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 1<<20)
	for _, cmd := range []Command{
		&CreateCluster{Name: "app"},
		&CreateCluster{Name: big},
		&CreateShard{Cluster: "nope", Name: "s1", Nodes: []*Node{{Name: "pg1", Host: "h", Port: 5432, Role: RolePrimary}}},
		&CreateShard{Cluster: "app", Name: "s1", Nodes: []*Node{{Name: big, Host: "h", Port: 5432, Role: RolePrimary}}},
		&RemoveNode{Cluster: "app", Shard: "s1", Node: "pg1"},
		&RevokeToken{Name: "nobody"},
	} {
		if err := leader.Apply(ctx, cmd); KindOf(err) == 0 {
			t.Fatalf("%T: %v, want a typed refusal", cmd, err)
		}
	}
	after, err := leader.Info()
	if err != nil {
		t.Fatal(err)
	}
	if after.CommitIndex != before.CommitIndex || after.AppliedIndex != before.AppliedIndex {
		t.Fatalf("refused commands reached the log: commit %d -> %d, applied %d -> %d", before.CommitIndex, after.CommitIndex, before.AppliedIndex, after.AppliedIndex)
	}
}

// TestGroup_ReplicationIsNotPipelined: the TCP transport refuses
// pipelined replication, whose sender and decoder can park each other
// for good after a follower refuses an append (the follower then gets
// heartbeats and no entry, and the leader's shutdown hangs).
func TestGroup_ReplicationIsNotPipelined(t *testing.T) {
	g := newTCPGroup(t, 3, testTiming())
	leader := g.leader()
	for _, s := range g.stores {
		if s == leader {
			continue
		}
		_, err := leader.trans.AppendEntriesPipeline(raft.ServerID(s.ID()), raft.ServerAddress(s.RaftAddr()))
		if !errors.Is(err, raft.ErrPipelineReplicationNotSupported) {
			t.Fatalf("pipeline to %s: %v", s.ID(), err)
		}
	}
	// Replication works without it.
	if err := leader.Apply(context.Background(), &CreateCluster{Name: "orders"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range g.stores {
		poll(t, 5*time.Second, "replication", func() bool { return hasCluster(s, "orders") })
	}
}
