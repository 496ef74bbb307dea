package fleetsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/authtest"
	"github.com/clustermgr/clustermgr/internal/fleetsim"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/ha"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/replica"
)

// group is an in-process 3-replica manager group running the HA
// pipeline over a simulated fleet.
type group struct {
	t    *testing.T
	reps []*replica.Replica
	api  *http.Client
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

func newGroup(t *testing.T, haCfg ha.Config) *group {
	t.Helper()
	lg := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("FLEET_TEST_LOG") != "" {
		lg = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	g := &group{t: t, api: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	timing := meta.DefaultTiming()
	// One process runs the three replicas and the simulator, under the
	// race detector in make test: Raft gets a second.
	timing.HeartbeatTimeout, timing.ElectionTimeout, timing.LeaderLeaseTimeout = time.Second, time.Second, 500*time.Millisecond
	var peers []meta.Peer
	for i, port := range freePorts(t, 3) {
		peers = append(peers, meta.Peer{ID: fmt.Sprintf("m%d", i+1), RaftAddr: "127.0.0.1:" + strconv.Itoa(port)})
	}
	tokenFile := authtest.TokenFile(t)
	for _, pr := range peers {
		hc := haCfg
		r, err := replica.Start(replica.Config{
			NodeID: pr.ID, DataDir: t.TempDir(), RaftAddr: pr.RaftAddr, APIListen: "127.0.0.1:0", Peers: peers,
			Timing: timing, HA: &hc, Logger: lg.With("replica", pr.ID),
			AdminTokenFile: tokenFile, Keyring: authtest.Keyring(),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Kill() })
		g.reps = append(g.reps, r)
	}
	g.waitFor(30*time.Second, "a leader known to every replica, with the admin token", func() bool {
		for _, r := range g.reps {
			if _, a := r.Store.Leader(); a == "" {
				return false
			}
			tokens := 0
			_ = r.Store.View(context.Background(), meta.Stale, func(st *meta.State) error {
				tokens = len(st.Tokens)
				return nil
			})
			if tokens == 0 {
				return false
			}
		}
		return true
	})
	return g
}

// newFleetGroup starts a fleet of shards shards of 3 nodes, each with its
// agent, and a group to run it: probes every second, as a fleet runs,
// with a timeout that a loaded machine running the race detector keeps
// to. The fleet is closed when the test ends.
func newFleetGroup(t *testing.T, shards int) (*fleetsim.Fleet, *group) {
	t.Helper()
	f, err := fleetsim.NewFleet("127.0.0.1", shards, 3, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	const agentToken = "fleet-agent-token-0123456789"
	if err := f.StartAgents("127.0.0.1", agentToken); err != nil {
		t.Fatal(err)
	}
	return f, newGroup(t, ha.Config{ProbeInterval: time.Second, ProbeTimeout: 2 * time.Second, FailureThreshold: 3, AgentToken: agentToken})
}

// leaderTerm waits for a leader and returns its id and term.
func (g *group) leaderTerm() (string, uint64) {
	g.t.Helper()
	var id string
	var term uint64
	g.waitFor(30*time.Second, "a leader", func() bool {
		for _, r := range g.reps {
			if r.Store.IsLeader() {
				info, err := r.Store.Info()
				id, term = r.Store.ID(), info.Term
				return err == nil
			}
		}
		return false
	})
	return id, term
}

func (g *group) waitFor(d time.Duration, what string, cond func() bool) {
	g.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			g.t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// do sends a request to the replicas in turn until one answers (followers
// forward) and decodes a 2xx answer into out.
func (g *group) do(method, path string, body, out any) (int, []byte) {
	var status int
	var data []byte
	for _, r := range g.reps {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, r.URL+path, rd)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+authtest.AdminToken)
		resp, err := g.api.Do(req)
		if err != nil {
			continue
		}
		data, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
		if status == http.StatusServiceUnavailable {
			continue
		}
		break
	}
	if out != nil && status >= 200 && status < 300 {
		_ = json.Unmarshal(data, out)
	}
	return status, data
}

func (g *group) mustDo(method, path string, body any, want int, out any) {
	g.t.Helper()
	if status, data := g.do(method, path, body, out); status != want {
		g.t.Fatalf("%s %s: %d %s, want %d", method, path, status, data, want)
	}
}

// register registers the fleet's shards as cluster name, adopted, with
// their agents when the fleet runs them, several requests at a time.
func (g *group) register(name string, f *fleetsim.Fleet) {
	g.t.Helper()
	g.mustDo("POST", "/v1/clusters", map[string]any{"name": name, "pg_user": "postgres"}, http.StatusCreated, nil)
	var wg sync.WaitGroup
	errs := make(chan string, len(f.Shards))
	sem := make(chan struct{}, 8)
	for _, sh := range f.Shards {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var nodes []map[string]any
			for i, n := range sh.Nodes {
				role := "standby"
				if i == 0 {
					role = "primary"
				}
				node := map[string]any{"name": n.Name, "host": n.Host, "port": n.Port, "role": role}
				if len(sh.Agents) > i {
					agent := name + "-" + sh.Name + "-" + n.Name
					if err := g.post("/v1/agents", map[string]any{"name": agent, "url": sh.Agents[i].URL()}, http.StatusOK, http.StatusCreated); err != nil {
						errs <- err.Error()
						return
					}
					node["agent"], node["data_dir"] = agent, "/sim/"+sh.Name+"/"+n.Name
				}
				nodes = append(nodes, node)
			}
			if err := g.post("/v1/clusters/"+name+"/shards", map[string]any{"name": sh.Name, "nodes": nodes}, http.StatusCreated); err != nil {
				errs <- err.Error()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		g.t.Error(e)
	}
	if g.t.Failed() {
		g.t.FailNow()
	}
}

// post sends a registration until it is taken (one of want) or refused.
// It is tried again while no leader answers (an election), as a client of
// the group does; a conflict after a retry is the first try's success
// whose answer the election lost.
func (g *group) post(path string, body any, want ...int) error {
	deadline := time.Now().Add(time.Minute)
	for retried := false; ; retried = true {
		status, data := g.do("POST", path, body, nil)
		if slices.Contains(want, status) || retried && status == http.StatusConflict {
			return nil
		}
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return fmt.Errorf("POST %s: %d %s", path, status, data)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// shards returns the shards of cluster name as the API shows them.
func (g *group) shards(name string) map[string]api.Shard {
	var c api.Cluster
	if status, _ := g.do("GET", "/v1/clusters/"+name, nil, &c); status != http.StatusOK {
		return nil
	}
	out := map[string]api.Shard{}
	for _, sh := range c.Shards {
		out[sh.Name] = sh
	}
	return out
}
