package service_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/clustermgr/clustermgr/internal/authtest"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/ha"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/replica"
)

// TestViews_FleetSized: a follower's view of a large fleet is taken
// whole. The bounds of requests (1,000 entries a list) do not apply to
// the keys of a view: a follower seeing more than 1,000 nodes down (a
// data centre lost) must still count towards the majority a failover
// needs.
func TestViews_FleetSized(t *testing.T) {
	r, token := startWithPeerSecret(t)
	v := api.PeerView{Replica: "m2"}
	for i := range 3000 {
		v.Down = append(v.Down, fmt.Sprintf("c%d/s%d/pg1", i/100, i))
	}
	body, _ := json.Marshal(v)
	req, _ := http.NewRequest(http.MethodPost, r.URL+"/v1/internal/views", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("a view of 3,000 nodes down: %d, want 204", resp.StatusCode)
	}
}

// TestViews_PeerRoutes: the internal routes take the group's peer
// credential and no other token, not even an admin's; the leader's
// answer to a view does not claim that its asks reach a replica they
// never reached, and a replica takes an ask to probe nodes.
func TestViews_PeerRoutes(t *testing.T) {
	r, peer := startWithPeerSecret(t)
	post := func(path, token string, body any) *http.Response {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, r.URL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	bodies := map[string]any{
		"/v1/internal/views": api.PeerView{Replica: "m2", Down: []string{}},
		"/v1/internal/watch": api.PeerWatch{Keys: []string{"c1/s1/pg1"}},
	}
	for path, body := range bodies {
		for _, token := range []string{"", authtest.AdminToken, peer + "x"} {
			if resp := post(path, token, body); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("POST %s with token %q: %d, want 401", path, token, resp.StatusCode)
			}
		}
		resp := post(path, peer, body)
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("POST %s with the peer credential: %d, want 204", path, resp.StatusCode)
		}
		// No ask of this leader's reached a replica "m2": the answer
		// must not say that they do (TestFleet_FailoverWhileAnotherShardHangs
		// shows a group's followers told so).
		if got := resp.Header.Get(api.WatchHeader); got != "" {
			t.Errorf("the answer to %s: %s %q, want none", path, api.WatchHeader, got)
		}
	}
}

// startWithPeerSecret starts a one-replica group running the HA pipeline
// and returns it with its peer credential.
func startWithPeerSecret(t *testing.T) (*replica.Replica, string) {
	t.Helper()
	addr, trans := raft.NewInmemTransport("")
	r, err := replica.Start(replica.Config{
		NodeID: "m1", APIListen: "127.0.0.1:0", Peers: []meta.Peer{{ID: "m1", RaftAddr: string(addr)}},
		Timing: fastTiming(), Transport: trans, InMemory: true, Logger: quietLogger(), AdminTokenFile: authtest.TokenFile(t), Keyring: authtest.Keyring(),
		HA: &ha.Config{ProbeInterval: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Kill() })
	waitBootstrapped(t, r)
	var token string
	waitFor(t, 5*time.Second, "the group's peer secret", func() bool {
		token = r.HA.PeerToken()
		return token != ""
	})
	return r, token
}
