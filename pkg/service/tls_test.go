package service_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/authtest"
	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/internal/tlstest"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/replica"
	"github.com/clustermgr/clustermgr/pkg/tlsconf"
)

// TestTLS_GroupRunsOverTLSAndRefusesAForeignCA runs three replicas whose
// API is HTTPS and whose Raft, forwarding and member records are mutual
// TLS with certificates from the test's CA: the group elects, forwards
// and replicates. A peer whose certificate comes from another CA cannot
// talk Raft to it, and a replica cannot be made to talk to one.
func TestTLS_GroupRunsOverTLSAndRefusesAForeignCA(t *testing.T) {
	ca := tlstest.NewCA(t, "group")
	peers := make([]meta.Peer, 3)
	for i, port := range pgtest.FreePorts(t, 3) {
		peers[i] = meta.Peer{ID: fmt.Sprintf("m%d", i+1), RaftAddr: fmt.Sprintf("127.0.0.1:%d", port)}
	}
	tokenFile := authtest.TokenFile(t)
	var reps []*replica.Replica
	for _, p := range peers {
		cert, key := ca.Issue(p.ID)
		b, err := tlsconf.Load(cert, key, ca.File)
		if err != nil {
			t.Fatal(err)
		}
		r, err := replica.Start(replica.Config{NodeID: p.ID, DataDir: t.TempDir(), RaftAddr: p.RaftAddr, APIListen: "127.0.0.1:0", Peers: peers,
			Timing: fastTiming(), RegisterInterval: 50 * time.Millisecond, Logger: quietLogger(), AdminTokenFile: tokenFile, Keyring: authtest.Keyring(), TLS: b})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Kill() })
		reps = append(reps, r)
	}
	for _, r := range reps {
		if !strings.HasPrefix(r.URL, "https://") {
			t.Fatalf("advertised %s", r.URL)
		}
		waitBootstrapped(t, r)
	}
	leader, followers := leaderOf(t, reps)
	waitFor(t, 10*time.Second, "every member's https address recorded", func() bool {
		info, err := leader.Store.Info()
		if err != nil {
			return false
		}
		for _, m := range info.Members {
			if !strings.HasPrefix(m.APIAddr, "https://") {
				return false
			}
		}
		return true
	})

	pool, err := tlsconf.LoadCA(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	call := func(method, url, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+authtest.AdminToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	// A write through a follower is forwarded to the leader over TLS and
	// replicated over TLS to every replica.
	if st, body := call("POST", followers[0].URL+"/v1/clusters", `{"name":"app"}`); st != http.StatusCreated {
		t.Fatalf("create through a follower: %d %s", st, body)
	}
	for _, r := range reps {
		waitFor(t, 10*time.Second, "replication to "+r.Store.ID(), func() bool {
			n := 0
			_ = r.Store.View(context.Background(), meta.Stale, func(st *meta.State) error { n = len(st.Clusters); return nil })
			return n == 1
		})
	}
	// Plain HTTP to the API gets nowhere.
	plain := strings.Replace(leader.URL, "https://", "http://", 1)
	if resp, err := http.Get(plain + "/v1/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("plain HTTP answered %d", resp.StatusCode)
		}
	}

	// A peer with a certificate from another CA: the leader's Raft port
	// refuses it, and it is not trusted as a server either.
	foreign := tlstest.NewCA(t, "other")
	cert, key := foreign.Issue("intruder")
	fb, err := tlsconf.Load(cert, key, foreign.File)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", leader.Store.RaftAddr(), fb.Client())
	if err == nil {
		// TLS 1.3 reports a refused client certificate on the first read.
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a foreign-CA peer reached Raft: %v", err)
	}
	// A peer that trusts only the foreign CA does not accept the group's
	// certificate either: Raft never talks to such a server.
	trustForeign := fb.Client()
	trustForeign.ServerName = "127.0.0.1"
	if c, err := tls.Dial("tcp", leader.Store.RaftAddr(), trustForeign); err == nil {
		c.Close()
		t.Fatal("the group's certificate verified against a foreign CA")
	}
	// The group is unharmed.
	if st, body := call("POST", leader.URL+"/v1/clusters", `{"name":"app2"}`); st != http.StatusCreated {
		t.Fatalf("create after the intrusion attempts: %d %s", st, body)
	}
}
