package agent

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clustermgr/clustermgr/pkg/fencing"
)

func TestParseLag(t *testing.T) {
	for _, c := range []struct {
		in   string
		want maxLag
		err  bool
	}{
		{"", maxLag{}, false},
		{"1048576", maxLag{bytes: 1 << 20}, false},
		{"16MB", maxLag{bytes: 16 << 20}, false},
		{"64kB", maxLag{bytes: 64 << 10}, false},
		{"2GB", maxLag{bytes: 2 << 30}, false},
		{"10s", maxLag{time: 10 * time.Second}, false},
		{"500ms", maxLag{time: 500 * time.Millisecond}, false},
		{"0", maxLag{}, true},
		{"-5", maxLag{}, true},
		{"16 MB", maxLag{}, true},
		{"16XB", maxLag{}, true},
		{"MB", maxLag{}, true},
		{"99999999999TB", maxLag{}, true},
	} {
		got, err := parseLag(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("parseLag(%q) = %+v, %v; want %+v, error %v", c.in, got, err, c.want, c.err)
		}
	}
}

// TestJudge compares whole answers for each check over the facts a check
// reads, the declaration, the lease and the newest epoch seen.
func TestJudge(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	i64 := func(v int64) *int64 { return &v }
	f64 := func(v float64) *float64 { return &v }
	const dir = "/data/pg1"
	primaryFacts := facts{}
	standbyFacts := facts{inRecovery: true, streaming: true, lagBytes: 100, lagSeconds: 0.5}
	declPrimary := role{Node: "app.s1.pg1", Role: RolePrimary, Epoch: 3}
	declStandby := role{Node: "app.s1.pg1", Role: RoleStandby, Epoch: 3}
	declSync := role{Node: "app.s1.pg1", Role: RoleStandby, Sync: true, Epoch: 3}
	base := func(a HealthAnswer) HealthAnswer {
		if a.State == "" {
			a.State = "running"
		}
		a.Node = "app.s1.pg1"
		a.Epoch = 3
		return a
	}
	for _, c := range []struct {
		name  string
		check string
		decl  role
		f     facts
		err   error
		lag   maxLag
		seen  uint64
		lease *lease
		want  HealthAnswer
	}{
		{name: "primary, declared, no lease yet", check: CheckPrimary, decl: declPrimary, f: primaryFacts, seen: 3,
			want: base(HealthAnswer{Check: CheckPrimary, OK: true, Role: "primary", Declared: RolePrimary})},
		{name: "primary with a live lease", check: CheckPrimary, decl: declPrimary, f: primaryFacts, seen: 3, lease: &lease{until: now.Add(time.Second)},
			want: base(HealthAnswer{Check: CheckPrimary, OK: true, Role: "primary", Declared: RolePrimary})},
		{name: "primary whose lease ran out, standbys still take its WAL", check: CheckPrimary, decl: declPrimary, f: primaryFacts, seen: 3,
			lease: &lease{until: now.Add(-5 * time.Second), served: now.Add(-200 * time.Millisecond)},
			want:  base(HealthAnswer{Check: CheckPrimary, OK: true, Role: "primary", Declared: RolePrimary})},
		{name: "primary thawed after its lease ran out", check: CheckPrimary, decl: declPrimary, f: primaryFacts, seen: 3,
			lease: &lease{until: now.Add(-5 * time.Second), served: now.Add(-6 * time.Second)},
			want:  base(HealthAnswer{Check: CheckPrimary, Role: "primary", Declared: RolePrimary, Reason: "its lease ran out and too few standbys take its WAL"})},
		{name: "primary of an outdated epoch (fenced since)", check: CheckPrimary, decl: declPrimary, f: primaryFacts, seen: 4,
			want: base(HealthAnswer{Check: CheckPrimary, Role: "primary", Declared: RolePrimary, Reason: "declared primary at epoch 3, but epoch 4 has been seen since"})},
		{name: "writable but declared standby", check: CheckPrimary, decl: declStandby, f: primaryFacts, seen: 3,
			want: base(HealthAnswer{Check: CheckPrimary, Role: "primary", Declared: RoleStandby, Reason: "the manager has not declared it primary"})},
		{name: "declared primary still in recovery", check: CheckPrimary, decl: declPrimary, f: standbyFacts, seen: 3,
			want: base(HealthAnswer{Check: CheckPrimary, Role: "replica", Declared: RolePrimary, Streaming: true, LagBytes: i64(100), LagSeconds: f64(0.5), Reason: "the server is in recovery"})},
		{name: "primary stopped", check: CheckPrimary, decl: declPrimary, err: errStopped, seen: 3,
			want: base(HealthAnswer{Check: CheckPrimary, State: "stopped", Declared: RolePrimary, Reason: "the server is not running"})},
		{name: "primary unreachable", check: CheckPrimary, decl: declPrimary, err: errors.New("timeout"), seen: 3,
			want: base(HealthAnswer{Check: CheckPrimary, State: "unreachable", Declared: RolePrimary, Reason: "the server does not answer: timeout"})},
		{name: "replica streaming", check: CheckReplica, decl: declStandby, f: standbyFacts, seen: 3,
			want: base(HealthAnswer{Check: CheckReplica, OK: true, Role: "replica", Declared: RoleStandby, Streaming: true, LagBytes: i64(100), LagSeconds: f64(0.5)})},
		{name: "replica not streaming", check: CheckReplica, decl: declStandby, f: facts{inRecovery: true}, seen: 3,
			want: base(HealthAnswer{Check: CheckReplica, Role: "replica", Declared: RoleStandby, LagBytes: i64(0), LagSeconds: f64(0), Reason: "the server does not stream from a primary"})},
		{name: "replica over the byte lag", check: CheckReplica, decl: declStandby, f: standbyFacts, lag: maxLag{bytes: 99}, seen: 3,
			want: base(HealthAnswer{Check: CheckReplica, Role: "replica", Declared: RoleStandby, Streaming: true, LagBytes: i64(100), LagSeconds: f64(0.5), Reason: "it lags 100 bytes, more than 99"})},
		{name: "replica within the time lag", check: CheckReplica, decl: declStandby, f: standbyFacts, lag: maxLag{time: time.Second}, seen: 3,
			want: base(HealthAnswer{Check: CheckReplica, OK: true, Role: "replica", Declared: RoleStandby, Streaming: true, LagBytes: i64(100), LagSeconds: f64(0.5)})},
		{name: "replica over the time lag", check: CheckReplica, decl: declStandby, f: standbyFacts, lag: maxLag{time: 100 * time.Millisecond}, seen: 3,
			want: base(HealthAnswer{Check: CheckReplica, Role: "replica", Declared: RoleStandby, Streaming: true, LagBytes: i64(100), LagSeconds: f64(0.5), Reason: "it lags 0.5 s, more than 100ms"})},
		{name: "replica in maintenance", check: CheckReplica, decl: role{Node: "app.s1.pg1", Role: RoleStandby, Maintenance: true, Epoch: 3}, f: standbyFacts, seen: 3,
			want: base(HealthAnswer{Check: CheckReplica, Role: "replica", Declared: RoleStandby, Maintenance: true, Streaming: true, LagBytes: i64(100), LagSeconds: f64(0.5), Reason: "the node is in maintenance"})},
		{name: "replica check of the primary", check: CheckReplica, decl: declPrimary, f: primaryFacts, seen: 3,
			want: base(HealthAnswer{Check: CheckReplica, Role: "primary", Declared: RolePrimary, Reason: "the server is not in recovery"})},
		{name: "read-only of the primary", check: CheckReadOnly, decl: declPrimary, f: primaryFacts, seen: 3,
			want: base(HealthAnswer{Check: CheckReadOnly, OK: true, Role: "primary", Declared: RolePrimary})},
		{name: "read-only of a replica", check: CheckReadOnly, decl: declStandby, f: standbyFacts, seen: 3,
			want: base(HealthAnswer{Check: CheckReadOnly, OK: true, Role: "replica", Declared: RoleStandby, Streaming: true, LagBytes: i64(100), LagSeconds: f64(0.5)})},
		{name: "sync of a synchronous standby", check: CheckSync, decl: declSync, f: standbyFacts, seen: 3,
			want: base(HealthAnswer{Check: CheckSync, OK: true, Role: "replica", Declared: RoleStandby, Sync: true, Streaming: true, LagBytes: i64(100), LagSeconds: f64(0.5)})},
		{name: "sync of an asynchronous standby", check: CheckSync, decl: declStandby, f: standbyFacts, seen: 3,
			want: base(HealthAnswer{Check: CheckSync, Role: "replica", Declared: RoleStandby, Streaming: true, LagBytes: i64(100), LagSeconds: f64(0.5), Reason: "the node is not a synchronous standby"})},
		{name: "sync declared before a newer epoch", check: CheckSync, decl: declSync, f: standbyFacts, seen: 4,
			want: base(HealthAnswer{Check: CheckSync, Role: "replica", Declared: RoleStandby, Sync: true, Streaming: true, LagBytes: i64(100), LagSeconds: f64(0.5), Reason: "the node is not a synchronous standby"})},
		{name: "async of an asynchronous standby", check: CheckAsync, decl: declStandby, f: standbyFacts, seen: 3,
			want: base(HealthAnswer{Check: CheckAsync, OK: true, Role: "replica", Declared: RoleStandby, Streaming: true, LagBytes: i64(100), LagSeconds: f64(0.5)})},
		{name: "async of a synchronous standby", check: CheckAsync, decl: declSync, f: standbyFacts, seen: 3,
			want: base(HealthAnswer{Check: CheckAsync, Role: "replica", Declared: RoleStandby, Sync: true, Streaming: true, LagBytes: i64(100), LagSeconds: f64(0.5), Reason: "the node is a synchronous standby"})},
		{name: "health of a running standby", check: CheckHealth, decl: declStandby, f: facts{inRecovery: true}, seen: 3,
			want: base(HealthAnswer{Check: CheckHealth, OK: true, Role: "replica", Declared: RoleStandby, LagBytes: i64(0), LagSeconds: f64(0)})},
		{name: "health of a stopped server", check: CheckHealth, decl: declStandby, err: errStopped, seen: 3,
			want: base(HealthAnswer{Check: CheckHealth, State: "stopped", Declared: RoleStandby, Reason: "the server is not running"})},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := NewServer("0123456789abcdef", nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			s.epochs[dir] = fencing.Token{Epoch: c.seen}
			if c.lease != nil {
				s.leases[dir] = c.lease
			}
			got := s.judge(c.check, dir, c.decl, c.f, c.err, c.lag, now)
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}
