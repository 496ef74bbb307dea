package fleetsim

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/fencing"
)

// TestAgent_FenceAndRejoin drives a simulated shard's agents through the
// real agent client as a failover and a rejoin do: a crashed primary's
// status, a kill, a stale fencing token refused, a lease and a role taken,
// a rewind onto the new primary and a start that streams from it.
func TestAgent_FenceAndRejoin(t *testing.T) {
	f, err := NewFleet("127.0.0.1", 1, 3, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const token = "sim-agent-token-0123456789"
	if err := f.StartAgents("127.0.0.1", token); err != nil {
		t.Fatal(err)
	}
	sh := f.Shards[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = fencing.WithTerm(ctx, 3)
	client := func(i int) *agent.Client { return agent.NewClient(sh.Agents[i].URL(), token) }

	if _, err := agent.NewClient(sh.Agents[0].URL(), "a-wrong-token-0123456789").Status(ctx, "/d"); !isStatus(err, 401) {
		t.Fatalf("status with a wrong token: %v, want a 401", err)
	}
	if _, err := client(0).Initdb(ctx, agent.Request{DataDir: "/d", Epoch: 1}); !isStatus(err, 400) {
		t.Fatalf("initdb: %v, want a 400 naming what the simulator does not run", err)
	}

	// The leader renews the primary's lease and declares a standby.
	if err := client(0).LeaseFrom(ctx, agent.LeaseRequest{DataDir: "/d", Epoch: 1, From: time.Now(), TTL: 1500 * time.Millisecond, AcksNeeded: 1}); err != nil {
		t.Fatal(err)
	}
	if until := sh.Agents[0].LeaseUntil(); until.Before(time.Now().Add(time.Second)) {
		t.Fatalf("lease until %v, want about 1.5 s from now", until)
	}
	if err := client(1).Role(ctx, agent.RoleRequest{DataDir: "/d", Epoch: 1, Role: agent.RoleStandby}); err != nil {
		t.Fatal(err)
	}
	if got := []string{sh.Agents[0].Role(), sh.Agents[1].Role()}; !cmp.Equal(got, []string{agent.RolePrimary, agent.RoleStandby}) {
		t.Fatalf("roles %v", got)
	}

	// The primary crashes; a failover fences it and promotes pg2.
	sh.Crash(0)
	st, err := client(0).Status(ctx, "/d")
	if err != nil {
		t.Fatal(err)
	}
	if want := (statusShape{Running: false, Standby: false, State: "in production", Epoch: 1, Term: 3}); shapeOfStatus(st) != want {
		t.Fatalf("crashed primary's status %+v, want %+v", shapeOfStatus(st), want)
	}
	if _, err := client(0).Stop(ctx, "/d", 2, "kill"); err != nil {
		t.Fatal(err)
	}
	if _, err := client(0).Stop(ctx, "/d", 1, "kill"); !agent.IsStaleEpoch(err) {
		t.Fatalf("a stop of epoch 1 after epoch 2: %v, want a stale epoch", err)
	}
	if !sh.Nodes[1].promote() {
		t.Fatal("pg2 was a primary already")
	}

	// The rejoin rewinds it from pg2 and starts it: it streams from pg2.
	conninfo := "host=" + sh.Nodes[1].Host + " port=" + strconv.Itoa(sh.Nodes[1].Port) + " user=postgres application_name=pg1"
	if _, err := client(0).Rewind(ctx, "/d", 2, conninfo, ""); err != nil {
		t.Fatal(err)
	}
	st, err = client(0).Start(ctx, "/d", 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := (statusShape{Running: true, Standby: true, State: "in archive recovery", Epoch: 2, Term: 3}); shapeOfStatus(st) != want {
		t.Fatalf("rejoined node's status %+v, want %+v", shapeOfStatus(st), want)
	}
	if sh.Nodes[0].Primary() || sh.Nodes[0].Upstream() != sh.Nodes[1] {
		t.Fatal("pg1 does not stream from pg2")
	}
	c, err := net.Dial("tcp", net.JoinHostPort(sh.Nodes[0].Host, strconv.Itoa(sh.Nodes[0].Port)))
	if err != nil {
		t.Fatalf("pg1's server refuses after its start: %v", err)
	}
	c.Close()
	if n := sh.Agents[0].Count("stop"); n != 1 {
		t.Fatalf("%d stops counted, want 1 (the stale one refused)", n)
	}
}

type statusShape struct {
	Running, Standby bool
	State            string
	Epoch, Term      uint64
}

func shapeOfStatus(st agent.Status) statusShape {
	return statusShape{Running: st.Running, Standby: st.Standby, State: st.Control.ClusterState, Epoch: st.EpochSeen, Term: st.TermSeen}
}

func isStatus(err error, status int) bool {
	var e *agent.Error
	return errors.As(err, &e) && e.Status == status
}
