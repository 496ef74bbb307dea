package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/clustermgr/clustermgr/internal/apitest"
	"github.com/clustermgr/clustermgr/internal/authtest"
	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/replica"
)

func fastTiming() meta.Timing {
	t := meta.DefaultTiming()
	t.HeartbeatTimeout = 150 * time.Millisecond
	t.ElectionTimeout = 150 * time.Millisecond
	t.LeaderLeaseTimeout = 150 * time.Millisecond
	t.CommitTimeout = 5 * time.Millisecond
	return t
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func freeAddr(t testing.TB) string {
	t.Helper()
	// Outside the ephemeral range: a replica restarts on its address.
	return fmt.Sprintf("127.0.0.1:%d", pgtest.FreePort(t))
}

// startSingle starts a one-replica group in memory and waits until it leads.
func startSingle(t testing.TB) *replica.Replica {
	t.Helper()
	addr, trans := raft.NewInmemTransport("")
	r, err := replica.Start(replica.Config{
		NodeID: "m1", APIListen: "127.0.0.1:0", Peers: []meta.Peer{{ID: "m1", RaftAddr: string(addr)}},
		Timing: fastTiming(), Transport: trans, InMemory: true, Logger: quietLogger(), AdminTokenFile: authtest.TokenFile(t), Keyring: authtest.Keyring(),
	})
	if err != nil {
		t.Fatalf("start replica: %v", err)
	}
	t.Cleanup(func() { _ = r.Kill() })
	waitFor(t, 5*time.Second, "replica to lead", func() bool {
		id, api := r.Store.Leader()
		return id == "m1" && api != ""
	})
	waitBootstrapped(t, r)
	return r
}

// startGroup starts n replicas over TCP on loopback and waits until every
// replica knows the leader's API address and its own record is written.
func startGroup(t testing.TB, n int) []*replica.Replica {
	t.Helper()
	peers := make([]meta.Peer, n)
	for i, port := range pgtest.FreePorts(t, n) {
		peers[i] = meta.Peer{ID: fmt.Sprintf("m%d", i+1), RaftAddr: fmt.Sprintf("127.0.0.1:%d", port)}
	}
	reps := make([]*replica.Replica, n)
	tokenFile := authtest.TokenFile(t)
	for i, p := range peers {
		r, err := replica.Start(replica.Config{
			NodeID: p.ID, DataDir: t.TempDir(), RaftAddr: p.RaftAddr, APIListen: "127.0.0.1:0", Peers: peers,
			Timing: fastTiming(), RegisterInterval: 50 * time.Millisecond, Logger: quietLogger(), AdminTokenFile: tokenFile, Keyring: authtest.Keyring(),
		})
		if err != nil {
			t.Fatalf("start replica %s: %v", p.ID, err)
		}
		t.Cleanup(func() { _ = r.Kill() })
		reps[i] = r
	}
	waitFor(t, 10*time.Second, "every member recorded", func() bool {
		for _, r := range reps {
			if _, api := r.Store.Leader(); api == "" {
				return false
			}
			info, err := r.Store.Info()
			if err != nil {
				return false
			}
			for _, m := range info.Members {
				if m.APIAddr == "" {
					return false
				}
			}
		}
		return true
	})
	for _, r := range reps {
		waitBootstrapped(t, r)
	}
	return reps
}

// waitBootstrapped waits until r's state holds the admin token.
func waitBootstrapped(t testing.TB, r *replica.Replica) {
	t.Helper()
	waitFor(t, 10*time.Second, "the admin token recorded", func() bool {
		has := false
		_ = r.Store.View(context.Background(), meta.Stale, func(st *meta.State) error {
			has = len(st.Tokens) > 0
			return nil
		})
		return has
	})
}

func leaderOf(t testing.TB, reps []*replica.Replica) (leader *replica.Replica, followers []*replica.Replica) {
	t.Helper()
	waitFor(t, 10*time.Second, "a leader", func() bool {
		leader, followers = nil, nil
		for _, r := range reps {
			if r.Store.IsLeader() {
				leader = r
			} else {
				followers = append(followers, r)
			}
		}
		return leader != nil
	})
	return leader, followers
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) problem(t testing.TB) api.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != api.ProblemContentType {
		t.Fatalf("content type %q, want %s; body %s", ct, api.ProblemContentType, r.body)
	}
	var p api.Problem
	r.decode(t, &p)
	if p.Status != r.status {
		t.Fatalf("problem status %d differs from response status %d", p.Status, r.status)
	}
	if p.Title == "" || p.Type == "" {
		t.Fatalf("problem without type or title: %s", r.body)
	}
	return p
}

func do(t testing.TB, method, url string, body any, header ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+authtest.AdminToken)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	checkContract(t, req, body, resp.StatusCode, resp.Header, data)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// contract is the API document every exchange of these tests is held to.
var contract = sync.OnceValues(apitest.New)

// checkContract fails the test when a request or its answer does not
// match the API document.
func checkContract(t testing.TB, req *http.Request, body any, status int, header http.Header, data []byte) {
	t.Helper()
	v, err := contract()
	if err != nil {
		t.Fatal(err)
	}
	var reqBody []byte
	switch b := body.(type) {
	case nil:
	case string:
		reqBody = []byte(b)
	case []byte:
		reqBody = b
	default:
		reqBody, _ = json.Marshal(b)
	}
	if err := v.Check(req, reqBody, status, header, data); err != nil {
		t.Errorf("openapi: %v", err)
	}
}

// doLed is do for a request that needs a leader: while the replica
// answers 503 no-leader (an election under way, which the API says to
// retry shortly), it retries for up to 10 s.
func doLed(t testing.TB, method, url string, body any) response {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := do(t, method, url, body)
		if r.status != http.StatusServiceUnavailable || !bytes.Contains(r.body, []byte("no-leader")) || time.Now().After(deadline) {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustStatus(t testing.TB, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body %s", r.status, want, r.body)
	}
}
