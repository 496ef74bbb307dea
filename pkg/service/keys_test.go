package service_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/internal/authtest"
	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/keyring"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/replica"
)

func testKeyring(t *testing.T, fill ...byte) *keyring.Keyring {
	t.Helper()
	var raw [][]byte
	for _, b := range fill {
		raw = append(raw, bytes.Repeat([]byte{b}, keyring.KeySize))
	}
	k, err := keyring.New(raw...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// startOnDisk starts (or restarts) a one-replica group in dir with keys.
func startOnDisk(t *testing.T, dir, raftAddr, tokenFile string, keys *keyring.Keyring) *replica.Replica {
	t.Helper()
	r, err := replica.Start(replica.Config{
		NodeID: "m1", DataDir: dir, RaftAddr: raftAddr, APIListen: "127.0.0.1:0", Peers: []meta.Peer{{ID: "m1", RaftAddr: raftAddr}},
		Timing: fastTiming(), Logger: quietLogger(), AdminTokenFile: tokenFile, Keyring: keys,
	})
	if err != nil {
		t.Fatalf("start replica: %v", err)
	}
	t.Cleanup(func() { _ = r.Kill() })
	waitFor(t, 5*time.Second, "replica to lead", func() bool { return r.Store.IsLeader() })
	waitBootstrapped(t, r)
	return r
}

func secretsOf(t *testing.T, r *replica.Replica) (password, peer string) {
	t.Helper()
	_ = r.Store.View(context.Background(), meta.Stale, func(st *meta.State) error {
		if c := st.Clusters["app"]; c != nil {
			password = c.Settings.PGPassword
		}
		peer = st.PeerSecret
		return nil
	})
	return password, peer
}

func keyOf(s string) string {
	id, _, _ := keyring.Parse(s)
	return id
}

// TestSecrets_SealedAtRestAndRotated: the password reaches raft.db and the
// snapshots sealed only; a new first key in the key file reseals every
// secret at the next leadership, after which the old key can go; a
// replica that lost the key cannot open the password and says so, and
// replaces only the peer secret, which is the group's own.
func TestSecrets_SealedAtRestAndRotated(t *testing.T) {
	if testing.Short() {
		t.Skip("starts replicas on disk")
	}
	dir, addr, tokenFile := t.TempDir(), freeAddr(t), authtest.TokenFile(t)
	const password = "Sealed-At-Rest-Password-7f3a"
	oldKeys := testKeyring(t, 1)

	r := startOnDisk(t, dir, addr, tokenFile, oldKeys)
	mustStatus(t, do(t, "POST", r.URL+"/v1/clusters", api.ClusterCreate{Name: "app", PGPassword: password}), http.StatusCreated)
	pw, peer := secretsOf(t, r)
	if keyOf(pw) != oldKeys.Current() || keyOf(peer) != oldKeys.Current() {
		t.Fatalf("secrets not sealed with the key: %q %q", pw, peer)
	}
	if got, err := oldKeys.Open(meta.PasswordPurpose("app"), pw); err != nil || got != password {
		t.Fatalf("open the stored password: %q %v", got, err)
	}
	if err := r.Store.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	authtest.NoFileHolds(t, dir, password)

	// Rotation: the new key first, the old one kept.
	newKeys := testKeyring(t, 2, 1)
	r = startOnDisk(t, dir, addr, tokenFile, newKeys)
	waitFor(t, 10*time.Second, "the secrets resealed with the new key", func() bool {
		pw, peer := secretsOf(t, r)
		return keyOf(pw) == newKeys.Current() && keyOf(peer) == newKeys.Current()
	})
	pw, _ = secretsOf(t, r)
	if got, err := newKeys.Open(meta.PasswordPurpose("app"), pw); err != nil || got != password {
		t.Fatalf("open the resealed password: %q %v", got, err)
	}
	evs := getEvents(t, r.URL)
	if !strings.Contains(evs, meta.EventSecretsResealed) || strings.Contains(evs, password) {
		t.Fatalf("events: %s", evs)
	}
	if err := r.Store.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	authtest.NoFileHolds(t, dir, password)

	// The old key removed: everything still opens.
	onlyNew := testKeyring(t, 2)
	r = startOnDisk(t, dir, addr, tokenFile, onlyNew)
	if r.Service.PeerCredential() == "" {
		t.Fatal("the peer secret does not open with the new key alone")
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}

	// A key file that lost the key: the password stays as it is (no one
	// here can open it), the peer secret is replaced.
	lost := testKeyring(t, 3)
	r = startOnDisk(t, dir, addr, tokenFile, lost)
	waitFor(t, 10*time.Second, "the peer secret replaced", func() bool {
		_, peer := secretsOf(t, r)
		return keyOf(peer) == lost.Current()
	})
	if pw2, _ := secretsOf(t, r); pw2 != pw {
		t.Fatalf("a password this replica cannot open was changed: %q", pw2)
	}
	if r.Service.PeerCredential() == "" {
		t.Fatal("no peer secret after the replacement")
	}
}

func getEvents(t *testing.T, url string) string {
	t.Helper()
	res := do(t, "GET", url+"/v1/events", nil)
	mustStatus(t, res, http.StatusOK)
	return string(res.body)
}
