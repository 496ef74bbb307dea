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
