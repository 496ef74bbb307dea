package meta

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

var update = flag.Bool("update", false, "rewrite the golden snapshot in testdata")

// bufSink is a raft.SnapshotSink writing to memory.
type bufSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *bufSink) ID() string    { return "test" }
func (s *bufSink) Cancel() error { s.cancelled = true; return nil }
func (s *bufSink) Close() error  { return nil }

var _ raft.SnapshotSink = (*bufSink)(nil)

// richState builds a deterministic state through commands.
func richState(t testing.TB) *applier {
	a := newApplier()
	a.must(t, &SetMember{Member: Member{ID: "m1", RaftAddr: "127.0.0.1:7001", APIAddr: "http://127.0.0.1:8001"}})
	a.must(t, &SetMember{Member: Member{ID: "m2", RaftAddr: "127.0.0.1:7002", APIAddr: "http://127.0.0.1:8002"}})
	a.must(t, &CreateCluster{Name: "orders", Settings: ClusterSettings{PGUser: "cm", PGPassword: seal(t, testKeys, PasswordPurpose("orders"), "secret"), ReplicationUser: "repl", AutoFailover: true}})
	a.must(t, twoNodeShard("orders", "s1", 5432))
	a.must(t, &PutAgent{Agent: AgentRecord{Name: "db3", URL: "http://db3:9000"}})
	a.must(t, &AddNode{Cluster: "orders", Shard: "s1", Node: &Node{Name: "pg3", Host: "db3", Port: 5432, Role: RoleStandby, Agent: "db3", DataDir: "/pg", Priority: 3}})
	a.must(t, &CreateCluster{Name: "empty"})
	return a
}

func snapshotBytes(t testing.TB, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	return sink.Bytes()
}

func TestSnapshot_RestoreEqualsOriginal(t *testing.T) {
	a := richState(t)
	data := snapshotBytes(t, a.fsm)
	restored := &applier{fsm: NewFSM()}
	if err := restored.fsm.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if got, want := restored.stateJSON(t), a.stateJSON(t); got != want {
		t.Fatalf("restored state differs:\n%s\n%s", got, want)
	}
	// The restored FSM goes on applying: ids continue.
	restored.index = a.index
	restored.must(t, &CreateCluster{Name: "later"})
	evs := restored.state().Events
	if evs[len(evs)-1].ID != uint64(len(evs)) {
		t.Fatalf("event ids after restore: %+v", evs[len(evs)-1])
	}
}

const goldenPath = "testdata/snapshot-v1.golden"

// TestGoldenSnapshot_V1StillRestores restores a snapshot written by version
// 1 of the format. Later versions must keep restoring it.
func TestGoldenSnapshot_V1StillRestores(t *testing.T) {
	if *update {
		if err := os.WriteFile(filepath.FromSlash(goldenPath), snapshotBytes(t, richState(t).fsm), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.FromSlash(goldenPath))
	if err != nil {
		t.Fatal(err)
	}
	st, err := ReadSnapshot(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := st.Clusters["orders"]
	if c == nil || c.Settings.PGPassword != "secret" || c.Settings.PGUser != "cm" || !c.Settings.AutoFailover {
		t.Fatalf("cluster orders: %+v", c)
	}
	sh := c.Shards["s1"]
	if sh == nil || sh.Epoch != 1 || len(sh.Nodes) != 3 {
		t.Fatalf("shard s1: %+v", sh)
	}
	if n := sh.Nodes["pg1"]; n.Role != RolePrimary || n.Port != 5432 || n.Priority != 5 {
		t.Fatalf("pg1: %+v", n)
	}
	if n := sh.Nodes["pg2"]; n.Role != RoleStandby || !n.HasTag(TagNoFailover) {
		t.Fatalf("pg2: %+v", n)
	}
	if n := sh.Nodes["pg3"]; n.Agent != "http://db3:9000" || n.DataDir != "/pg" {
		t.Fatalf("pg3: %+v", n)
	}
	if st.Clusters["empty"] == nil || st.Clusters["empty"].Shards == nil {
		t.Fatal("cluster empty")
	}
	if st.Members["m2"].APIAddr != "http://127.0.0.1:8002" || len(st.Events) != 6 || st.NextEventID != 7 || st.Operations == nil {
		t.Fatalf("members %v events %d next %d", st.Members, len(st.Events), st.NextEventID)
	}
}

func TestSnapshot_RefusesUnknownFormatOrVersion(t *testing.T) {
	cases := map[string]string{
		`{"format":"clustermgr-state","version":2}` + "\n{}":   "version 2 is not supported",
		`{"format":"clustermgr-state","version":0}` + "\n{}":   "version 0 is not supported",
		`{"format":"something-else","version":1}` + "\n{}":     "is not \"clustermgr-state\"",
		`not a header` + "\n{}":                                "decode snapshot header",
		`{"format":"clustermgr-state","version":1}` + "\n{bad": "decode snapshot state",
		``: "read snapshot header",
	}
	for in, want := range cases {
		f := NewFSM()
		err := f.Restore(io.NopCloser(strings.NewReader(in)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Restore(%q) = %v, want %q", in, err, want)
		}
	}
}

// TestFSM_CountsAppliedBytesAndSnapshots: the FSM counts the bytes of the
// commands it applied (the log's growth) and records the size and
// timing of the last snapshot written.
func TestFSM_CountsAppliedBytesAndSnapshots(t *testing.T) {
	f := NewFSM()
	var want uint64
	for i, cmd := range []Command{&CreateCluster{Name: "a"}, &CreateCluster{Name: "b"}} {
		data, err := Encode(cmd)
		if err != nil {
			t.Fatal(err)
		}
		want += uint64(len(data))
		if err, _ := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data}).(error); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.AppliedBytes(); got != want {
		t.Fatalf("applied %d bytes, want %d", got, want)
	}
	if !f.LastSnapshot().At.IsZero() {
		t.Fatal("a snapshot recorded before any was written")
	}
	data := snapshotBytes(t, f)
	sn := f.LastSnapshot()
	state := data[bytes.IndexByte(data, '\n')+1:]
	if sn.At.IsZero() || sn.Bytes != len(state) || sn.Encode <= 0 || sn.Persist <= 0 {
		t.Fatalf("last snapshot %+v, state of %d bytes", sn, len(state))
	}
}

// TestFSM_GenerationChanges: each command applied, refused or not, and
// each snapshot restored changes the state's generation, so that a
// reader caching what it derived from the state never misses a change
// (a restore must not go back to a generation already seen).
func TestFSM_GenerationChanges(t *testing.T) {
	a := newApplier()
	gen := func() uint64 { return a.state().Generation }
	seen := map[uint64]string{gen(): "new"}
	step := func(what string) {
		t.Helper()
		g := gen()
		if prev, ok := seen[g]; ok {
			t.Fatalf("after %s the generation is %d, as after %s", what, g, prev)
		}
		seen[g] = what
	}
	a.must(t, &CreateCluster{Name: "orders"})
	step("a cluster created")
	if err := a.apply(t, &CreateCluster{Name: "orders"}); err == nil {
		t.Fatal("a second cluster of the same name was created")
	}
	step("a refused command")
	data := snapshotBytes(t, a.fsm)
	a.must(t, &CreateCluster{Name: "later"})
	step("a second cluster created")
	if err := a.fsm.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	step("the snapshot taken before it restored")
}

// TestFSM_FleetGenerationIgnoresHistory: an event, an audit record or a
// webhook's progress leaves the fleet's generation as it was; anything
// else applied, and a restore, changes it.
func TestFSM_FleetGenerationIgnoresHistory(t *testing.T) {
	a := newApplier()
	gen := func() uint64 { return a.state().FleetGeneration }
	a.must(t, &CreateCluster{Name: "orders"})
	g := gen()
	a.must(t, &RecordEvent{Event: Event{Kind: "decision", Cluster: "orders", Message: "seen"}})
	a.must(t, &RecordAudit{Record: AuditRecord{Method: "POST", Path: "/v1/clusters", Status: 201}})
	if gen() != g {
		t.Fatalf("an event and an audit record changed the fleet's generation %d to %d", g, gen())
	}
	data := snapshotBytes(t, a.fsm)
	a.must(t, &UpdateCluster{Name: "orders", AutoFailover: new(bool)})
	if gen() == g {
		t.Fatal("a cluster's update left the fleet's generation as it was")
	}
	g = gen()
	if err := a.fsm.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if gen() <= g {
		t.Fatalf("a restore gave the fleet's generation %d after %d", gen(), g)
	}
}
