package ha

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/keyring"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// electedStore is a store whose replica m1 has or has not won the
// election, with an empty state.
type electedStore struct {
	Store
	leader  atomic.Bool
	state   *meta.State  // nil: empty
	applied atomic.Int64 // commands applied
}

func (s *electedStore) ID() string { return "m1" }
func (s *electedStore) IsLeader() bool {
	return s.leader.Load()
}
func (s *electedStore) Leader() (string, string) {
	if s.leader.Load() {
		return "m1", "http://m1"
	}
	return "m2", "http://m2"
}
func (s *electedStore) View(_ context.Context, _ meta.Consistency, fn func(*meta.State) error) error {
	if s.state != nil {
		return fn(s.state)
	}
	return fn(&meta.State{})
}

func (s *electedStore) Apply(_ context.Context, cmd meta.Command) error {
	s.applied.Add(1)
	return nil
}

// managerOver is a pipeline over st, with a keyring and no log.
func managerOver(t *testing.T, st Store) *Manager {
	t.Helper()
	kr, err := keyring.New([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return New(st, Config{Keyring: kr, Logger: slog.New(slog.DiscardHandler)})
}

// TestManualOperation_WaitsForTheTermOfAJustElectedLeader: a request that
// reaches a replica which won the election but has not yet started its
// term (the barrier, its member record) waits for the term, bounded,
// rather than answering that leadership is changing to itself. A
// follower answers at once.
func TestManualOperation_WaitsForTheTermOfAJustElectedLeader(t *testing.T) {
	st := &electedStore{}
	m := managerOver(t, st)
	m.termWait = 500 * time.Millisecond
	ctx := t.Context()

	start := time.Now()
	_, err := m.Switchover(ctx, "app", "s1", "")
	if nl := (*meta.NotLeaderError)(nil); !errors.As(err, &nl) || nl.LeaderID != "m2" || time.Since(start) > time.Second {
		t.Fatalf("on a follower: %v after %v, want at once a not-leader error naming m2", err, time.Since(start))
	}

	st.leader.Store(true)
	term, cancel := context.WithCancel(ctx)
	defer cancel()
	started := make(chan struct{})
	go func() {
		defer close(started)
		time.Sleep(200 * time.Millisecond)
		m.mu.Lock()
		m.term = term
		m.mu.Unlock()
	}()
	_, err = m.Switchover(ctx, "app", "s1", "")
	<-started
	if meta.KindOf(err) != meta.KindNotFound {
		t.Fatalf("on a leader whose term starts 200 ms later: %v, want the shard's not-found once the term runs", err)
	}

	m.mu.Lock()
	m.term = nil
	m.mu.Unlock()
	start = time.Now()
	_, err = m.Switchover(ctx, "app", "s1", "")
	if nl := (*meta.NotLeaderError)(nil); !errors.As(err, &nl) || nl.LeaderID != "m1" || time.Since(start) < m.termWait {
		t.Fatalf("on a leader whose term never starts: %v after %v, want a not-leader error after %v", err, time.Since(start), m.termWait)
	}

	cancelled, stop := context.WithCancel(ctx)
	stop()
	start = time.Now()
	if _, err = m.Switchover(cancelled, "app", "s1", ""); err == nil || time.Since(start) > time.Second {
		t.Fatalf("a cancelled request: %v after %v, want an error at once", err, time.Since(start))
	}
	if m.ops.held("app/s1") {
		t.Fatal("a refused request left routine changes held off the shard")
	}
}

// TestScheduledSwitchover_WaitsForProbesInTheTerm: a scheduled switchover
// due when a leader's term begins is decided once every node of its
// shard has been probed in the term, at a later round: not refused on
// the samples a follower kept, and without holding up the leader's
// loop (which also runs the failover rounds) while it waits.
func TestScheduledSwitchover_WaitsForProbesInTheTerm(t *testing.T) {
	now := time.Now()
	st := &electedStore{state: &meta.State{
		Clusters: map[string]*meta.Cluster{"app": {Name: "app", Shards: map[string]*meta.Shard{"s1": {Name: "s1", Nodes: map[string]*meta.Node{
			"pg1": {Name: "pg1", Host: "127.0.0.1", Port: 1, Role: meta.RolePrimary},
			"pg2": {Name: "pg2", Host: "127.0.0.1", Port: 2, Role: meta.RoleStandby},
		}}}}},
		Schedules: map[string]*meta.Schedule{"sw1": {ID: "sw1", Cluster: "app", Shard: "s1", At: now.Add(-time.Second), State: meta.ScheduleWaiting}},
	}}
	st.leader.Store(true)
	m := managerOver(t, st)
	term, cancel := context.WithCancel(t.Context())
	defer cancel()
	m.mu.Lock()
	m.term, m.termStart = term, now
	m.mu.Unlock()

	start := time.Now()
	m.runSchedules(term)
	if el := time.Since(start); el > 200*time.Millisecond {
		t.Errorf("the round took %v: it waited for probes", el)
	}
	if n := st.applied.Load(); n != 0 {
		t.Fatalf("%d commands applied: the schedule was settled on samples from before the term", n)
	}
}

// TestRoutineChangesHeldForAManualOperation: while a manual operation is
// prepared on a shard (it waits for fresh probes), no routine change
// starts there; a round starting a sync-set each interval took the shard
// from a switchover (409) in the fault suite. Holds count; a release
// twice counts once.
func TestRoutineChangesHeldForAManualOperation(t *testing.T) {
	st := &electedStore{}
	m := managerOver(t, st)
	c := meta.Cluster{Name: "app"}
	sh := meta.Shard{Name: "s1", Nodes: map[string]*meta.Node{
		"pg1": {Name: "pg1", Role: meta.RolePrimary}, "pg2": {Name: "pg2", Role: meta.RoleStandby}}}
	s := snapOf(&c, &sh, nil)

	r1 := m.ops.hold("app/s1")
	r2 := m.ops.hold("app/s1")
	if m.startRoutine(t.Context(), &s, "sync-set", "", map[string]any{}, "held") || st.applied.Load() != 0 {
		t.Fatalf("a routine change started on a held shard (%d commands applied)", st.applied.Load())
	}
	if m.ops.held("app/s2") {
		t.Fatal("another shard is held")
	}
	r1()
	r1()
	if !m.ops.held("app/s1") {
		t.Fatal("released by the first of two holds, or by one release twice")
	}
	r2()
	if m.ops.held("app/s1") {
		t.Fatal("still held after every release")
	}

	// A routine change that passed its check before the hold is
	// recorded before the hold returns (the request then preempts it).
	if !m.ops.beginRoutine("app/s1") {
		t.Fatal("a routine change refused on a shard no longer held")
	}
	got := make(chan func())
	go func() { got <- m.ops.hold("app/s1") }()
	select {
	case <-got:
		t.Fatal("the hold returned while a routine change was being recorded")
	case <-time.After(100 * time.Millisecond):
	}
	m.ops.endRoutine("app/s1")
	select {
	case release := <-got:
		release()
	case <-time.After(5 * time.Second):
		t.Fatal("the hold never returned after the routine change was recorded")
	}
}

// TestLastChange_WhileAnOperationIsStillRegistered: an operation whose end
// Raft records is seen ended by a client at once, before its routine has
// returned and noted when it ended: a switchover asked for in between was
// judged on probes from while the last one ran, those not newer than an
// earlier change ("pg1 is not streaming from pg3"). While the runner
// still holds an operation, the shard's last change is now.
func TestLastChange_WhileAnOperationIsStillRegistered(t *testing.T) {
	m := managerOver(t, &electedStore{})
	key := shardKey("app", "s1")
	earlier := time.Now().Add(-time.Minute)
	m.ops.opEnded[key] = earlier
	if got := m.lastChange(key); !got.Equal(earlier) {
		t.Fatalf("with no operation registered: last change %v, want %v (the last one's end)", got, earlier)
	}
	m.ops.running[key] = &runningOp{id: "switchover-1", kind: "switchover"}
	before := time.Now()
	if got := m.lastChange(key); got.Before(before) {
		t.Fatalf("with an operation still registered: last change %v, want now (not before %v)", got, before)
	}
}
