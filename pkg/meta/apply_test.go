package meta

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// applier feeds commands to an FSM as raft would, with increasing indexes.
type applier struct {
	fsm   *FSM
	index uint64
	// bulk skips comparing the whole state around each check (tests that
	// apply thousands of commands).
	bulk bool
}

func newApplier() *applier { return &applier{fsm: NewFSM()} }

// apply checks cmd (FSM.Check), then applies it: the check must change
// nothing and give the same answer as the application.
func (a *applier) apply(t testing.TB, cmd Command) error {
	t.Helper()
	cmd.stamp(t0.Add(time.Duration(a.index) * time.Second))
	data, err := Encode(cmd)
	if err != nil {
		t.Fatal(err)
	}
	var before, after string
	if !a.bulk {
		before = a.stateJSON(t)
	}
	checked := a.fsm.Check(data)
	if !a.bulk {
		after = a.stateJSON(t)
	}
	if after != before {
		t.Fatalf("checking %T changed the state:\nbefore %s\nafter  %s", cmd, before, after)
	}
	applied := a.raw(t, data)
	if fmt.Sprint(checked) != fmt.Sprint(applied) || KindOf(checked) != KindOf(applied) {
		t.Fatalf("%T: check said %v, apply said %v", cmd, checked, applied)
	}
	return applied
}

// raw applies encoded data as the next log entry.
func (a *applier) raw(t testing.TB, data []byte) error {
	t.Helper()
	a.index++
	res := a.fsm.Apply(&raft.Log{Type: raft.LogCommand, Index: a.index, Data: data})
	if res == nil {
		return nil
	}
	err, ok := res.(error)
	if !ok {
		t.Fatalf("Apply returned %T, want error or nil", res)
	}
	return err
}

func (a *applier) must(t testing.TB, cmd Command) {
	t.Helper()
	if err := a.apply(t, cmd); err != nil {
		t.Fatalf("apply %T: %v", cmd, err)
	}
}

func (a *applier) stateJSON(t testing.TB) string {
	t.Helper()
	var out []byte
	_ = a.fsm.View(func(s *State) error {
		var err error
		out, err = json.Marshal(s)
		return err
	})
	return string(out)
}

func (a *applier) state() *State {
	var st *State
	_ = a.fsm.View(func(s *State) error { st = s; return nil })
	return st
}

func twoNodeShard(cluster, name string, port int) *CreateShard {
	return &CreateShard{Cluster: cluster, Name: name, Nodes: []*Node{
		{Name: "pg1", Host: "127.0.0.1", Port: port, Role: RolePrimary, Priority: 5},
		{Name: "pg2", Host: "127.0.0.1", Port: port + 1, Role: RoleStandby, Tags: []string{TagNoFailover}},
	}}
}

func TestFSM_EveryCommandApplies(t *testing.T) {
	a := newApplier()
	user, auto := "admin", false
	sealedPW, pw := seal(t, testKeys, PasswordPurpose("orders"), "pw"), seal(t, testKeys, PasswordPurpose("orders"), "pw2")
	peerSecret := seal(t, testKeys, PeerSecretPurpose, strings.Repeat("s", 64))
	resealedPeer := seal(t, testKeys2, PeerSecretPurpose, strings.Repeat("s", 64))
	resealedPW := seal(t, testKeys2, PasswordPurpose("orders"), "pw2")
	syncOn, maxLag := SyncOn, int64(1<<20)
	steps := []struct {
		cmd   Command
		check func(t *testing.T, s *State)
	}{
		{&SetMember{Member: Member{ID: "m1", RaftAddr: "127.0.0.1:7001", APIAddr: "http://127.0.0.1:8001"}}, func(t *testing.T, s *State) {
			if s.Members["m1"].APIAddr != "http://127.0.0.1:8001" {
				t.Fatal(s.Members)
			}
		}},
		{&RemoveMember{ID: "m1"}, func(t *testing.T, s *State) {
			if len(s.Members) != 0 {
				t.Fatal(s.Members)
			}
		}},
		{&CreateCluster{Name: "orders", Settings: ClusterSettings{PGUser: "cm", PGPassword: sealedPW, ReplicationUser: "repl", AutoFailover: true}}, func(t *testing.T, s *State) {
			c := s.Clusters["orders"]
			if c == nil || c.Settings.PGPassword != sealedPW || !c.CreatedAt.Equal(t0.Add(2*time.Second)) {
				t.Fatalf("%+v", c)
			}
		}},
		{&UpdateCluster{Name: "orders", PGPassword: &pw, PGUser: &user, AutoFailover: &auto}, func(t *testing.T, s *State) {
			st := s.Clusters["orders"].Settings
			if st.PGPassword != pw || st.PGUser != "admin" || st.AutoFailover || st.ReplicationUser != "repl" {
				t.Fatalf("%+v", st)
			}
		}},
		{twoNodeShard("orders", "s1", 5432), func(t *testing.T, s *State) {
			sh := s.Clusters["orders"].Shards["s1"]
			if sh.Epoch != 1 || sh.Primary().Name != "pg1" || !sh.Nodes["pg2"].HasTag(TagNoFailover) || sh.Nodes["pg1"].Priority != 5 {
				t.Fatalf("%+v", sh)
			}
		}},
		{&PutAgent{Agent: AgentRecord{Name: "db3", URL: "http://db3:9000/"}}, func(t *testing.T, s *State) {
			if a := s.Agents["db3"]; a == nil || a.URL != "http://db3:9000" || a.CreatedAt.IsZero() {
				t.Fatalf("%+v", a)
			}
		}},
		{&AddNode{Cluster: "orders", Shard: "s1", Node: &Node{Name: "pg3", Host: "db3.example", Port: 5432, Role: RoleStandby, Agent: "db3", DataDir: "/var/lib/pg"}}, func(t *testing.T, s *State) {
			if n := s.Clusters["orders"].Shards["s1"].Nodes["pg3"]; n == nil || n.Agent != "db3" {
				t.Fatalf("%+v", n)
			}
		}},
		{&UpdateShard{Cluster: "orders", Shard: "s1", Synchronous: &syncOn, MaxLagOnFailover: &maxLag}, func(t *testing.T, s *State) {
			sh := s.Clusters["orders"].Shards["s1"]
			if sh.SyncMode() != SyncOn || sh.MaxLag() != 1<<20 {
				t.Fatalf("%+v", sh.Settings)
			}
		}},
		{&UpdateShard{Cluster: "orders", Shard: "s1", Parameters: map[string]*string{"work_mem": ptr("64MB"), "max_connections": ptr("200"), "geqo": nil}}, func(t *testing.T, s *State) {
			sh := s.Clusters["orders"].Shards["s1"]
			want := map[string]string{"work_mem": "64MB", "max_connections": "200"}
			if !maps.Equal(sh.Settings.Parameters, want) || sh.ParamsVersion != 1 || !slices.Equal(sh.ParamsReset, []string{"geqo"}) {
				t.Fatalf("%+v version %d reset %v", sh.Settings.Parameters, sh.ParamsVersion, sh.ParamsReset)
			}
			if e := s.Events[len(s.Events)-1]; e.Message != "shard settings changed: parameters geqo reset, max_connections=200, work_mem=64MB" {
				t.Fatalf("event %q", e.Message)
			}
		}},
		{&ParamsApplied{Cluster: "orders", Shard: "s1", Node: "pg2", Version: 1, Pending: []string{"max_connections"}}, func(t *testing.T, s *State) {
			if n := s.Clusters["orders"].Shards["s1"].Nodes["pg2"]; n.ParamsApplied != 1 {
				t.Fatalf("%+v", n)
			}
			if e := s.Events[len(s.Events)-1]; e.Kind != EventParameters || e.Message != "pg2: parameters of version 1 written and reloaded; restart pending for max_connections" {
				t.Fatalf("event %+v", e)
			}
		}},
		{&SetMaintenance{Cluster: "orders", Shard: "s1", Node: "pg3", On: true, Reason: "kernel update"}, func(t *testing.T, s *State) {
			if n := s.Clusters["orders"].Shards["s1"].Nodes["pg3"]; !n.Maintenance || n.MaintenanceReason != "kernel update" {
				t.Fatalf("%+v", n)
			}
			if e := s.Events[len(s.Events)-1]; e.Kind != EventMaintenance || !strings.Contains(e.Message, "(kernel update)") {
				t.Fatalf("event %+v", e)
			}
		}},
		{&PutSchedule{Stamp: Stamp{At: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}, Schedule: Schedule{ID: "sw-1", Cluster: "orders", Shard: "s1", To: "pg2", At: time.Date(2026, 12, 24, 3, 0, 0, 0, time.UTC)}}, func(t *testing.T, s *State) {
			if sc := s.Schedules["sw-1"]; sc == nil || sc.State != ScheduleWaiting || sc.To != "pg2" {
				t.Fatalf("%+v", sc)
			}
		}},
		{&SetSchedule{ID: "sw-1", State: ScheduleCancelled, Reason: "window moved"}, func(t *testing.T, s *State) {
			if sc := s.Schedules["sw-1"]; sc.State != ScheduleCancelled || sc.Reason != "window moved" {
				t.Fatalf("%+v", sc)
			}
			if e := s.Events[len(s.Events)-1]; e.Kind != EventSchedule || e.Message != "scheduled switchover sw-1 cancelled: window moved" {
				t.Fatalf("event %+v", e)
			}
		}},
		{&PutWebhook{Webhook: Webhook{Name: "pager", URL: "https://hooks.example.com/x", Kinds: []string{"promotion"}, Secret: seal(t, testKeys, WebhookSecretPurpose("pager"), "s3cret-s3cret")}}, func(t *testing.T, s *State) {
			w := s.Webhooks["pager"]
			if w == nil || w.Delivered != s.NextEventID-2 || !w.Matches(Event{Kind: "promotion"}) || w.Matches(Event{Kind: "decision"}) {
				t.Fatalf("%+v (next event %d)", w, s.NextEventID)
			}
		}},
		{&WebhookDelivered{Name: "pager", EventID: 1}, func(t *testing.T, s *State) {
			if w := s.Webhooks["pager"]; w.Delivered < 1 {
				t.Fatalf("%+v", w)
			}
		}},
		{&DeleteWebhook{Name: "pager"}, func(t *testing.T, s *State) {
			if len(s.Webhooks) != 0 {
				t.Fatal(s.Webhooks)
			}
		}},
		{&SetSyncSet{Cluster: "orders", Shard: "s1", Nodes: []string{"pg3", "pg2"}}, func(t *testing.T, s *State) {
			if got := s.Clusters["orders"].Shards["s1"].SyncSet; len(got) != 2 || got[0] != "pg2" {
				t.Fatalf("%v", got)
			}
		}},
		{&PutOperation{Operation: Operation{ID: "op-1", Kind: "failover", Cluster: "orders", Shard: "s1", Target: "pg2", Epoch: 2, State: OpRunning,
			Steps: []OperationStep{{Name: "promote", State: StepPending}}}}, func(t *testing.T, s *State) {
			if op := s.Operations["op-1"]; op == nil || op.State != OpRunning || op.CreatedAt.IsZero() {
				t.Fatalf("%+v", op)
			}
		}},
		{&CancelOperation{ID: "op-1"}, func(t *testing.T, s *State) {
			if op := s.Operations["op-1"]; op == nil || !op.CancelRequested || op.State != OpRunning {
				t.Fatalf("%+v", op)
			}
		}},
		{&StepOperation{ID: "op-1", Step: 0, Name: "promote", State: StepRunning}, func(t *testing.T, s *State) {
			if op := s.Operations["op-1"]; op.Steps[0].State != StepRunning {
				t.Fatalf("%+v", op)
			}
		}},
		{&FinishOperation{ID: "op-1", State: OpCancelled, Error: "cancelled before step promote"}, func(t *testing.T, s *State) {
			if op := s.Operations["op-1"]; op.State != OpCancelled || op.Steps[0].State != StepFailed {
				t.Fatalf("%+v", op)
			}
		}},
		{&SetPrimary{Cluster: "orders", Shard: "s1", Node: "pg2", Epoch: 2, Reason: "failover op-1"}, func(t *testing.T, s *State) {
			sh := s.Clusters["orders"].Shards["s1"]
			if sh.Primary().Name != "pg2" || sh.Epoch != 2 || sh.Nodes["pg1"].Role != RoleStandby || sh.SyncSet != nil {
				t.Fatalf("%+v", sh)
			}
		}},
		{&RecordEvent{Event: Event{Kind: EventDecision, Cluster: "orders", Shard: "s1", Message: "no failover: paused"}}, func(t *testing.T, s *State) {
			if e := s.Events[len(s.Events)-1]; e.Kind != EventDecision || e.At.IsZero() {
				t.Fatalf("%+v", e)
			}
		}},
		{&PutBackup{Backup: Backup{ID: "b1", Cluster: "orders", Shard: "s1", Node: "pg3", SizeBytes: 42, Verified: true}}, func(t *testing.T, s *State) {
			if b := s.Backups["b1"]; b == nil || b.SizeBytes != 42 || b.CreatedAt.IsZero() {
				t.Fatalf("%+v", b)
			}
		}},
		{&SetPeerSecret{Secret: peerSecret}, func(t *testing.T, s *State) {
			if s.PeerSecret != peerSecret {
				t.Fatal(s.PeerSecret)
			}
		}},
		{&ResealSecrets{Key: testKeys2.Current(), Items: []ResealItem{{From: peerSecret, To: resealedPeer}, {Cluster: "orders", From: pw, To: resealedPW}, {Cluster: "gone", From: "x", To: resealedPW}}}, func(t *testing.T, s *State) {
			if s.PeerSecret != resealedPeer || s.Clusters["orders"].Settings.PGPassword != resealedPW || s.Events[len(s.Events)-1].Kind != EventSecretsResealed {
				t.Fatalf("%s %s %+v", s.PeerSecret, s.Clusters["orders"].Settings.PGPassword, s.Events[len(s.Events)-1])
			}
		}},
		{&PutToken{Token: Token{Name: "ops", Scope: "operate", Hash: strings.Repeat("ab", 32), CreatedBy: "admin"}}, func(t *testing.T, s *State) {
			if tk := s.Tokens["ops"]; tk == nil || tk.Scope != "operate" || tk.CreatedAt.IsZero() || s.TokenByHash(strings.Repeat("ab", 32)) != tk {
				t.Fatalf("%+v", tk)
			}
		}},
		{&RevokeToken{Name: "ops"}, func(t *testing.T, s *State) {
			if len(s.Tokens) != 0 {
				t.Fatal(s.Tokens)
			}
		}},
		{&RecordAudit{Record: AuditRecord{Token: "ops", Method: "POST", Path: "/v1/clusters", Status: 201}}, func(t *testing.T, s *State) {
			if len(s.Audit) != 1 || s.Audit[0].ID != 1 || s.Audit[0].At.IsZero() || s.NextAuditID != 2 {
				t.Fatalf("%+v", s.Audit)
			}
		}},
		{&DeleteBackup{ID: "b1"}, func(t *testing.T, s *State) {
			if len(s.Backups) != 0 {
				t.Fatal(s.Backups)
			}
		}},
		{&RemoveNode{Cluster: "orders", Shard: "s1", Node: "pg3"}, func(t *testing.T, s *State) {
			if _, ok := s.Clusters["orders"].Shards["s1"].Nodes["pg3"]; ok {
				t.Fatal("pg3 still there")
			}
		}},
		{&DeleteAgent{Name: "db3"}, func(t *testing.T, s *State) {
			if len(s.Agents) != 0 {
				t.Fatal(s.Agents)
			}
		}},
		{&DeleteShard{Cluster: "orders", Name: "s1"}, func(t *testing.T, s *State) {
			if len(s.Clusters["orders"].Shards) != 0 {
				t.Fatal("shard still there")
			}
		}},
		{&DeleteCluster{Name: "orders"}, func(t *testing.T, s *State) {
			if len(s.Clusters) != 0 {
				t.Fatal("cluster still there")
			}
		}},
		{&SetLevel{Level: Level}, func(t *testing.T, s *State) {
			if s.Level != Level {
				t.Fatalf("level %d", s.Level)
			}
		}},
	}
	// A step of an operation leaves no event of its own (its start and end
	// do).
	quiet := map[CommandType]bool{CmdStepOperation: true, CmdRecordAudit: true, CmdWebhookDelivered: true}
	seen := map[CommandType]bool{}
	events := 0
	for _, st := range steps {
		if !quiet[st.cmd.Type()] {
			events++
		}
		a.must(t, st.cmd)
		st.check(t, a.state())
		seen[st.cmd.Type()] = true
	}
	for typ := range a.fsm.handlers {
		if !seen[typ] {
			t.Errorf("command type %d has no case in this test", typ)
		}
	}
	// Every change left an event with increasing ids.
	evs := a.state().Events
	if len(evs) != events {
		t.Fatalf("%d events for %d commands that record one", len(evs), events)
	}
	for i, e := range evs {
		if e.ID != uint64(i+1) || e.Message == "" || e.At.IsZero() {
			t.Fatalf("event %d: %+v", i, e)
		}
	}
}

func TestFSM_RejectedCommandsLeaveStateUnchanged(t *testing.T) {
	a := newApplier()
	a.must(t, &CreateCluster{Name: "app"})
	a.must(t, twoNodeShard("app", "s1", 6000))
	a.must(t, &CreateCluster{Name: "other"})
	cases := []struct {
		name string
		cmd  Command
		kind ErrorKind
		msg  string
	}{
		{"duplicate cluster", &CreateCluster{Name: "app"}, KindConflict, "already exists"},
		{"invalid cluster name", &CreateCluster{Name: "App"}, KindInvalid, "lowercase DNS label"},
		{"update unknown cluster", &UpdateCluster{Name: "nope"}, KindNotFound, "does not exist"},
		{"delete cluster with shards", &DeleteCluster{Name: "app"}, KindConflict, "use force"},
		{"delete unknown cluster", &DeleteCluster{Name: "nope"}, KindNotFound, "does not exist"},
		{"shard in unknown cluster", twoNodeShard("nope", "s1", 7000), KindNotFound, "does not exist"},
		{"duplicate shard", twoNodeShard("app", "s1", 7000), KindConflict, "already exists"},
		{"shard without nodes", &CreateShard{Cluster: "app", Name: "s2"}, KindInvalid, "at least one node"},
		{"two primaries", &CreateShard{Cluster: "app", Name: "s2", Nodes: []*Node{
			{Name: "a", Host: "h", Port: 1, Role: RolePrimary}, {Name: "b", Host: "h", Port: 2, Role: RolePrimary}}}, KindConflict, "at most one primary"},
		{"node name twice", &CreateShard{Cluster: "app", Name: "s2", Nodes: []*Node{
			{Name: "a", Host: "h", Port: 1, Role: RolePrimary}, {Name: "a", Host: "h", Port: 2, Role: RoleStandby}}}, KindConflict, "appears twice"},
		{"endpoint twice in shard", &CreateShard{Cluster: "app", Name: "s2", Nodes: []*Node{
			{Name: "a", Host: "h", Port: 1, Role: RolePrimary}, {Name: "b", Host: "H", Port: 1, Role: RoleStandby}}}, KindConflict, "appears twice"},
		{"endpoint registered elsewhere", &CreateShard{Cluster: "other", Name: "s2", Nodes: []*Node{
			{Name: "a", Host: "127.0.0.1", Port: 6001, Role: RolePrimary}}}, KindConflict, "already registered as app/s1/pg2"},
		{"bad node in shard", &CreateShard{Cluster: "app", Name: "s2", Nodes: []*Node{{Name: "a", Host: "h", Port: 0, Role: RolePrimary}}}, KindInvalid, "nodes[0].port"},
		{"delete unknown shard", &DeleteShard{Cluster: "app", Name: "nope"}, KindNotFound, "does not exist"},
		{"add node twice", &AddNode{Cluster: "app", Shard: "s1", Node: &Node{Name: "pg1", Host: "h", Port: 9, Role: RoleStandby}}, KindConflict, "already exists"},
		{"add second primary", &AddNode{Cluster: "app", Shard: "s1", Node: &Node{Name: "pg9", Host: "h", Port: 9, Role: RolePrimary}}, KindConflict, "already has primary"},
		{"add node at used endpoint", &AddNode{Cluster: "app", Shard: "s1", Node: &Node{Name: "pg9", Host: "127.0.0.1", Port: 6000, Role: RoleStandby}}, KindConflict, "already registered"},
		{"add invalid node", &AddNode{Cluster: "app", Shard: "s1", Node: &Node{Name: "pg9", Host: "h", Port: 9, Role: "leader"}}, KindInvalid, "role"},
		{"add nil node", &AddNode{Cluster: "app", Shard: "s1"}, KindInvalid, "required"},
		{"add node to unknown shard", &AddNode{Cluster: "app", Shard: "nope", Node: &Node{Name: "pg9", Host: "h", Port: 9, Role: RoleStandby}}, KindNotFound, "does not exist"},
		{"remove unknown node", &RemoveNode{Cluster: "app", Shard: "s1", Node: "nope"}, KindNotFound, "does not exist"},
		{"remove primary", &RemoveNode{Cluster: "app", Shard: "s1", Node: "pg1"}, KindConflict, "switch over first"},
		{"member without id", &SetMember{}, KindInvalid, "required"},
		{"invalid cron", &UpdateShard{Cluster: "app", Shard: "s1", BackupSchedule: ptr("every day")}, KindInvalid, "not a cron expression"},
		{"negative retention", &UpdateShard{Cluster: "app", Shard: "s1", BackupRetention: ptr(-1)}, KindInvalid, "out of range"},
		{"parameter the manager owns", &UpdateShard{Cluster: "app", Shard: "s1", Parameters: map[string]*string{"primary_conninfo": ptr("host=x")}}, KindInvalid, "parameters.primary_conninfo: cannot be set"},
		{"parameter name", &UpdateShard{Cluster: "app", Shard: "s1", Parameters: map[string]*string{"work mem": ptr("1")}}, KindInvalid, "is not a parameter name"},
		{"reset of an owned parameter", &UpdateShard{Cluster: "app", Shard: "s1", Parameters: map[string]*string{"port": nil}}, KindInvalid, "cannot be set"},
		{"parameters of a version not recorded", &ParamsApplied{Cluster: "app", Shard: "s1", Node: "pg1", Version: 9}, KindInvalid, "ahead of the shard's parameters"},
		{"maintenance of the primary", &SetMaintenance{Cluster: "app", Shard: "s1", Node: "pg1", On: true}, KindConflict, "switch over first"},
		{"maintenance reason with a newline", &SetMaintenance{Cluster: "app", Shard: "s1", Node: "pg2", On: true, Reason: "a\nb"}, KindInvalid, "control character"},
		{"schedule in the past", &PutSchedule{Schedule: Schedule{ID: "x", Cluster: "app", Shard: "s1", At: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}}, KindInvalid, "not in the future"},
		{"schedule years ahead", &PutSchedule{Schedule: Schedule{ID: "x", Cluster: "app", Shard: "s1", At: time.Now().Add(5 * 366 * 24 * time.Hour)}}, KindInvalid, "more than a year ahead"},
		{"schedule to the primary", &PutSchedule{Schedule: Schedule{ID: "x", Cluster: "app", Shard: "s1", To: "pg1", At: time.Now().Add(time.Hour)}}, KindConflict, "already the primary"},
		{"schedule of an unknown shard", &PutSchedule{Schedule: Schedule{ID: "x", Cluster: "app", Shard: "nope", At: time.Now().Add(time.Hour)}}, KindNotFound, "does not exist"},
		{"unknown schedule", &SetSchedule{ID: "nope", State: ScheduleCancelled}, KindNotFound, "does not exist"},
		{"webhook to a file", &PutWebhook{Webhook: Webhook{Name: "w", URL: "file:///etc/passwd", Secret: "x"}}, KindInvalid, "not an http(s) URL"},
		{"webhook without a secret", &PutWebhook{Webhook: Webhook{Name: "w", URL: "https://h/x"}}, KindInvalid, "secret: is required"},
		{"webhook of an unknown cluster", &PutWebhook{Webhook: Webhook{Name: "w", URL: "https://h/x", Cluster: "nope", Secret: "x"}}, KindNotFound, "does not exist"},
		{"parameters of an unknown node", &ParamsApplied{Cluster: "app", Shard: "s1", Node: "nope"}, KindNotFound, "not in shard"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := a.stateJSON(t)
			err := a.apply(t, tc.cmd)
			if err == nil {
				t.Fatal("accepted")
			}
			if KindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v (kind %d), want kind %d mentioning %q", err, KindOf(err), tc.kind, tc.msg)
			}
			if after := a.stateJSON(t); after != before {
				t.Fatalf("state changed by a rejected command:\n%s\n%s", before, after)
			}
		})
	}
}

func TestFSM_ForceDeletes(t *testing.T) {
	a := newApplier()
	a.must(t, &CreateCluster{Name: "app"})
	a.must(t, twoNodeShard("app", "s1", 6000))
	a.must(t, &RemoveNode{Cluster: "app", Shard: "s1", Node: "pg1", Force: true})
	a.must(t, &DeleteCluster{Name: "app", Force: true})
	if len(a.state().Clusters) != 0 {
		t.Fatal("cluster still there")
	}
	// The endpoint is free again.
	a.must(t, &CreateCluster{Name: "app"})
	a.must(t, twoNodeShard("app", "s1", 6000))
}

func TestFSM_IdempotentMemberCommandsWriteNoEvent(t *testing.T) {
	a := newApplier()
	m := Member{ID: "m1", RaftAddr: "a:1", APIAddr: "http://a:2"}
	a.must(t, &SetMember{Member: m})
	a.must(t, &SetMember{Member: m})
	a.must(t, &RemoveMember{ID: "m9"})
	if n := len(a.state().Events); n != 1 {
		t.Fatalf("%d events", n)
	}
}

func TestFSM_EventHistoryIsBounded(t *testing.T) {
	a := newApplier()
	a.bulk = true
	a.must(t, &CreateCluster{Name: "app"})
	on, off := true, false
	for i := 0; i < MaxEvents+4; i++ {
		v := on
		if i%2 == 1 {
			v = off
		}
		a.must(t, &UpdateCluster{Name: "app", AutoFailover: &v})
	}
	st := a.state()
	if len(st.Events) != MaxEvents {
		t.Fatalf("%d events kept", len(st.Events))
	}
	if first, last := st.Events[0].ID, st.Events[len(st.Events)-1].ID; first != 6 || last != MaxEvents+5 || st.NextEventID != MaxEvents+6 {
		t.Fatalf("ids %d..%d next %d", first, last, st.NextEventID)
	}
}

func TestFSM_UnknownCommandTypePanics(t *testing.T) {
	defer func() {
		if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "unknown command type 99") {
			t.Fatalf("recovered %v", v)
		}
	}()
	NewFSM().Apply(&raft.Log{Type: raft.LogCommand, Index: 7, Data: []byte{99, '{', '}'}})
}

func TestFSM_UnknownCommandWithIgnoreBitIsSkipped(t *testing.T) {
	a := newApplier()
	before := a.stateJSON(t)
	if res := a.fsm.Apply(&raft.Log{Type: raft.LogCommand, Index: 1, Data: []byte{byte(IgnoreUnknown | 99), '{', '}'}}); res != nil {
		t.Fatalf("result %v", res)
	}
	if after := a.stateJSON(t); after != before {
		t.Fatal("state changed")
	}
}

func TestFSM_UndecodableBodyPanics(t *testing.T) {
	defer func() {
		if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "cannot decode") {
			t.Fatalf("recovered %v", v)
		}
	}()
	NewFSM().Apply(&raft.Log{Type: raft.LogCommand, Index: 3, Data: append([]byte{byte(CmdCreateCluster)}, "{not json"...)})
}

func TestFSM_NonCommandEntriesIgnored(t *testing.T) {
	f := NewFSM()
	if res := f.Apply(&raft.Log{Type: raft.LogNoop, Index: 1}); res != nil {
		t.Fatal(res)
	}
	if res := f.Apply(&raft.Log{Type: raft.LogCommand, Index: 2}); res != nil {
		t.Fatal(res)
	}
}

func TestCommandTypes_NeverRenumbered(t *testing.T) {
	want := map[CommandType]Command{
		1: &SetMember{}, 2: &RemoveMember{}, 3: &CreateCluster{}, 4: &UpdateCluster{}, 5: &DeleteCluster{},
		6: &CreateShard{}, 7: &DeleteShard{}, 8: &AddNode{}, 9: &RemoveNode{},
		10: &PutOperation{}, 11: &SetPrimary{}, 12: &SetSyncSet{}, 13: &UpdateShard{}, 14: &RecordEvent{}, 15: &PutBackup{}, 16: &DeleteBackup{},
		17: &SetPeerSecret{}, 18: &CancelOperation{}, 19: &StepOperation{}, 20: &FinishOperation{},
	}
	for typ, cmd := range want {
		if cmd.Type() != typ {
			t.Errorf("%T has type %d, the log format says %d", cmd, cmd.Type(), typ)
		}
		data, err := Encode(cmd)
		if err != nil || data[0] != byte(typ) {
			t.Errorf("%T encodes with type byte %d: %v", cmd, data[0], err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestFSM_Tokens(t *testing.T) {
	a := newApplier()
	h := func(c string) string { return strings.Repeat(c, 64) }
	admin := Token{Name: "admin", Scope: "admin", Hash: h("a")}
	// A bootstrap token is recorded only into an empty table.
	a.must(t, &PutToken{Token: admin, Bootstrap: true})
	a.must(t, &PutToken{Token: Token{Name: "other", Scope: "admin", Hash: h("b")}, Bootstrap: true})
	if len(a.state().Tokens) != 1 {
		t.Fatalf("tokens %+v", a.state().Tokens)
	}
	for _, tc := range []struct {
		cmd  Command
		kind ErrorKind
	}{
		{&PutToken{Token: Token{Name: "admin", Scope: "read", Hash: h("c")}}, KindConflict},
		{&PutToken{Token: Token{Name: "dup", Scope: "read", Hash: h("a")}}, KindConflict},
		{&PutToken{Token: Token{Name: "Bad Name", Scope: "read", Hash: h("c")}}, KindInvalid},
		{&PutToken{Token: Token{Name: "x", Scope: "root", Hash: h("c")}}, KindInvalid},
		{&PutToken{Token: Token{Name: "x", Scope: "read", Hash: "nothex"}}, KindInvalid},
		{&RevokeToken{Name: "nobody"}, KindNotFound},
		{&RevokeToken{Name: "admin"}, KindConflict}, // the last admin token
	} {
		if err := a.apply(t, tc.cmd); KindOf(err) != tc.kind {
			t.Errorf("%T %+v: %v, want kind %d", tc.cmd, tc.cmd, err, tc.kind)
		}
	}
	// The audit trail keeps the last MaxAudit records, ids never reused.
	data, err := Encode(&RecordAudit{Record: AuditRecord{Token: "admin", Method: "POST", Path: "/v1/x"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < MaxAudit+5; i++ {
		if err := a.raw(t, data); err != nil {
			t.Fatal(err)
		}
	}
	st := a.state()
	if len(st.Audit) != MaxAudit || st.Audit[0].ID != 6 || st.Audit[len(st.Audit)-1].ID != MaxAudit+5 {
		t.Fatalf("audit: %d records, first %d", len(st.Audit), st.Audit[0].ID)
	}
}

func TestFSM_OneNodePerAgentDataDir(t *testing.T) {
	a := newApplier()
	a.must(t, &CreateCluster{Name: "a"})
	a.must(t, &CreateCluster{Name: "b"})
	for _, h := range []string{"h1", "h2", "h3"} {
		a.must(t, &PutAgent{Agent: AgentRecord{Name: h, URL: "http://" + h + ":9001"}})
	}
	n := func(name string, port int, agent, dir string) *Node {
		return &Node{Name: name, Host: "127.0.0.1", Port: port, Role: RoleStandby, Agent: agent, DataDir: dir}
	}
	a.must(t, &CreateShard{Cluster: "a", Name: "s1", Nodes: []*Node{n("pg1", 5001, "h1", "/pg/data")}})
	for _, tc := range []struct {
		cmd  Command
		want string
	}{
		{&CreateShard{Cluster: "b", Name: "s1", Nodes: []*Node{n("x", 5002, "h1", "/pg/data")}}, "already node a/s1/pg1"},
		{&AddNode{Cluster: "a", Shard: "s1", Node: n("pg2", 5003, "h1", "/pg/data")}, "already node a/s1/pg1"},
		{&CreateShard{Cluster: "b", Name: "s2", Nodes: []*Node{n("x", 5004, "h2", "/d"), n("y", 5005, "h2", "/d")}}, "appears twice"},
		{&PutAgent{Agent: AgentRecord{Name: "h4", URL: "http://h1:9001"}}, "already agent h1"},
		{&DeleteAgent{Name: "h1"}, "used by node a/s1/pg1"},
	} {
		err := a.apply(t, tc.cmd)
		if KindOf(err) != KindConflict || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%T: %v, want a conflict %q", tc.cmd, err, tc.want)
		}
	}
	// Another directory on the same agent, or the same path on another, is fine.
	a.must(t, &AddNode{Cluster: "a", Shard: "s1", Node: n("pg2", 5006, "h1", "/pg/data2")})
	a.must(t, &AddNode{Cluster: "a", Shard: "s1", Node: n("pg3", 5007, "h3", "/pg/data")})
	// An agent must be registered before a node names it.
	if err := a.apply(t, &AddNode{Cluster: "a", Shard: "s1", Node: n("pg4", 5008, "h9", "/pg/data")}); KindOf(err) != KindInvalid || !strings.Contains(err.Error(), "not registered") {
		t.Fatalf("an unregistered agent: %v", err)
	}
}

// TestFSM_LevelTwoKeepsEventHistoryPerShard: at level 1 a shard that
// fails over and over evicts every other shard's history; once the group
// is at level 2 the quiet shards keep theirs and the busy one loses its
// oldest events.
func TestFSM_LevelTwoKeepsEventHistoryPerShard(t *testing.T) {
	kept := func(level int) map[string]int {
		a := newApplier()
		a.bulk = true
		if level > 1 {
			a.must(t, &SetLevel{Level: level})
		}
		for _, sh := range []string{"quiet1", "quiet2"} {
			for range 3 {
				a.must(t, &RecordEvent{Event: Event{Kind: "decision", Cluster: "app", Shard: sh, Message: "seen"}})
			}
		}
		// Up to one past MaxEvents+eventSlack with the level's event:
		// the last one compacts the history at level 2.
		for range MaxEvents + eventSlack + 1 - 7 {
			a.must(t, &RecordEvent{Event: Event{Kind: "decision", Cluster: "app", Shard: "busy", Message: "failed over"}})
		}
		out := map[string]int{}
		st := a.state()
		for i, e := range st.Events {
			out[e.Shard]++
			if i > 0 && e.ID <= st.Events[i-1].ID {
				t.Fatalf("level %d: event %d after %d", level, e.ID, st.Events[i-1].ID)
			}
		}
		return out
	}
	if got, want := kept(1), map[string]int{"busy": MaxEvents}; !maps.Equal(got, want) {
		t.Errorf("level 1 kept %v, want %v", got, want)
	}
	// The level's own event is the group's: one more history key.
	if got, want := kept(2), map[string]int{"": 1, "quiet1": 3, "quiet2": 3, "busy": MaxEvents - 7}; !maps.Equal(got, want) {
		t.Errorf("level 2 kept %v, want %v", got, want)
	}
}

func TestFSM_SetLevel(t *testing.T) {
	a := newApplier()
	if err := a.apply(t, &SetLevel{Level: Level + 1}); err == nil {
		t.Fatalf("level %d, past this build's, was taken", Level+1)
	}
	a.must(t, &SetLevel{Level: 2})
	a.must(t, &SetLevel{Level: 1}) // never lowered
	a.must(t, &SetLevel{Level: 2}) // idempotent across leaders
	st := a.state()
	if st.Level != 2 || len(st.Events) != 1 || st.Events[0].Kind != EventLevel {
		t.Fatalf("level %d, events %+v", st.Level, st.Events)
	}
}
