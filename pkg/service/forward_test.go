package service_test

import (
	"github.com/clustermgr/clustermgr/internal/authtest"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/replica"
)

func TestForward_FollowerForwardsWritesAndReadsToLeader(t *testing.T) {
	reps := startGroup(t, 3)
	leader, followers := leaderOf(t, reps)
	f := followers[0]

	r := do(t, "POST", f.URL+"/v1/clusters", map[string]any{"name": "billing"})
	mustStatus(t, r, http.StatusCreated)

	// The write went through the leader and is visible on every replica.
	for _, rep := range reps {
		waitFor(t, 5*time.Second, "cluster on "+rep.Store.ID(), func() bool {
			return do(t, "GET", rep.URL+"/v1/clusters/billing?stale=true", nil).status == http.StatusOK
		})
	}
	// A leader read through a follower is forwarded and succeeds.
	mustStatus(t, do(t, "GET", f.URL+"/v1/clusters/billing", nil), http.StatusOK)
	mustStatus(t, do(t, "GET", f.URL+"/v1/clusters/billing?consistency=linearizable", nil), http.StatusOK)
	// Errors come back from the leader unchanged.
	r = do(t, "POST", f.URL+"/v1/clusters", map[string]any{"name": "billing"})
	mustStatus(t, r, http.StatusConflict)
	r.problem(t)

	// /v1/manager is this replica's own view, and names the leader.
	var m api.Manager
	r = do(t, "GET", f.URL+"/v1/manager", nil)
	mustStatus(t, r, http.StatusOK)
	r.decode(t, &m)
	if m.NodeID != f.Store.ID() || m.State != "Follower" || m.LeaderID != leader.Store.ID() || m.LeaderAPIAddr != leader.URL || len(m.Members) != 3 {
		t.Fatalf("manager view of follower: %+v", m)
	}
	for _, mem := range m.Members {
		if mem.APIAddr == "" || !mem.Voter || mem.Leader != (mem.ID == leader.Store.ID()) {
			t.Fatalf("member %+v", mem)
		}
	}
}

func TestForward_StaleReadServedLocally(t *testing.T) {
	reps := startGroup(t, 3)
	_, followers := leaderOf(t, reps)
	f := followers[0]
	mustStatus(t, do(t, "POST", f.URL+"/v1/clusters", map[string]any{"name": "c1"}), http.StatusCreated)
	waitFor(t, 5*time.Second, "replication", func() bool {
		return do(t, "GET", f.URL+"/v1/clusters/c1?stale=true", nil).status == http.StatusOK
	})
	// A request already forwarded once is not forwarded again, but a stale
	// read is served by the follower itself.
	r := do(t, "GET", f.URL+"/v1/clusters/c1?stale=true", nil, api.ForwardedHeader, "m9")
	mustStatus(t, r, http.StatusOK)
	r = do(t, "GET", f.URL+"/v1/clusters/c1", nil, api.ForwardedHeader, "m9")
	mustStatus(t, r, http.StatusServiceUnavailable)
	if p := r.problem(t); !strings.Contains(p.Detail, "not the leader") || r.header.Get("Retry-After") == "" {
		t.Fatalf("loop refusal: %+v", p)
	}
}

func TestForward_NoLeaderIs503WithRetryAfter(t *testing.T) {
	// A replica with no state and no peers waits to be joined: it knows no
	// leader.
	_, trans := raft.NewInmemTransport("")
	r, err := replica.Start(replica.Config{NodeID: "lonely", APIListen: "127.0.0.1:0", Transport: trans, InMemory: true, Timing: fastTiming(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Kill() })
	for _, tc := range []struct{ method, path string }{{"GET", "/v1/clusters"}, {"POST", "/v1/clusters"}, {"DELETE", "/v1/manager/members/m2"}} {
		resp := do(t, tc.method, r.URL+tc.path, `{"name":"x"}`)
		mustStatus(t, resp, http.StatusServiceUnavailable)
		if resp.header.Get("Retry-After") == "" {
			t.Fatalf("%s %s: no Retry-After", tc.method, tc.path)
		}
		if p := resp.problem(t); !strings.Contains(p.Detail, "no leader") {
			t.Fatalf("detail %q", p.Detail)
		}
	}
	// Health is still served. The manager view and stale reads are
	// served from the local state, which has no token yet: 401.
	mustStatus(t, do(t, "GET", r.URL+"/v1/health", nil), http.StatusOK)
	mustStatus(t, do(t, "GET", r.URL+"/v1/manager", nil), http.StatusUnauthorized)
	mustStatus(t, do(t, "GET", r.URL+"/v1/clusters?stale=true", nil), http.StatusUnauthorized)
}

func TestForward_JoinTransferAndRemoveThroughAPI(t *testing.T) {
	reps := startGroup(t, 3)
	_, followers := leaderOf(t, reps)
	// A fourth replica starts with no peers and is joined through a follower.
	r4, err := replica.Start(replica.Config{NodeID: "m4", DataDir: t.TempDir(), RaftAddr: freeAddr(t), APIListen: "127.0.0.1:0",
		Timing: fastTiming(), RegisterInterval: 50 * time.Millisecond, Logger: quietLogger(), Keyring: authtest.Keyring()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r4.Kill() })
	join := map[string]any{"id": "m4", "raft_addr": r4.Store.RaftAddr(), "api_addr": r4.URL}
	mustStatus(t, doLed(t, "POST", followers[0].URL+"/v1/manager/members", join), http.StatusCreated)
	mustStatus(t, doLed(t, "POST", followers[1].URL+"/v1/manager/members", join), http.StatusCreated) // idempotent
	waitFor(t, 5*time.Second, "m4 to follow", func() bool {
		id, _ := r4.Store.Leader()
		return id != ""
	})

	// Hand leadership to m4, then check every replica agrees.
	r := doLed(t, "POST", followers[0].URL+"/v1/manager/transfer-leadership", map[string]any{"to": "m4"})
	mustStatus(t, r, http.StatusAccepted)
	var tr api.TransferResult
	r.decode(t, &tr)
	if tr.To != "m4" || tr.From == "" || tr.From == "m4" {
		t.Fatalf("transfer answer %+v", tr)
	}
	waitFor(t, 5*time.Second, "m4 to lead, as the others see it", func() bool {
		id, _ := followers[0].Store.Leader()
		return r4.Store.IsLeader() && id == "m4"
	})

	// Remove m4 through another replica; leadership moves on.
	mustStatus(t, doLed(t, "DELETE", followers[0].URL+"/v1/manager/members/m4", nil), http.StatusNoContent)
	waitFor(t, 10*time.Second, "a leader among the three", func() bool {
		for _, rep := range reps {
			if rep.Store.IsLeader() {
				return true
			}
		}
		return false
	})
	var m api.Manager
	waitFor(t, 5*time.Second, "three members", func() bool {
		resp := do(t, "GET", reps[0].URL+"/v1/manager", nil)
		resp.decode(t, &m)
		return len(m.Members) == 3
	})
	for _, mem := range m.Members {
		if mem.ID == "m4" {
			t.Fatalf("m4 still a member: %+v", m)
		}
	}
}

// TestForward_KeepsConnectionsToTheLeader: requests a follower forwards
// many at a time reuse its connections to the leader rather than open
// one each (the default transport keeps 2 idle connections a host: at
// 300 requests/s forwarded, every other one paid for a new connection
// and the API's tail latency with it).
func TestForward_KeepsConnectionsToTheLeader(t *testing.T) {
	reps := startGroup(t, 3)
	leader, followers := leaderOf(t, reps)
	f := followers[0]
	mustStatus(t, do(t, "POST", f.URL+"/v1/clusters", map[string]any{"name": "billing"}), http.StatusCreated)
	const workers, each = 16, 25
	before := leader.APIConnections()
	var wg sync.WaitGroup
	statuses := make(chan int, workers*each)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				statuses <- do(t, "GET", f.URL+"/v1/clusters/billing", nil).status
			}
		}()
	}
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != http.StatusOK {
			t.Fatalf("a forwarded read: %d", st)
		}
	}
	// The follower needs at most one connection per request in flight.
	if opened := leader.APIConnections() - before; opened > 2*workers {
		t.Fatalf("%d requests forwarded %d at a time opened %d connections to the leader", workers*each, workers, opened)
	}
}
