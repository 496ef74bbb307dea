package meta

import (
	"bytes"
	"strings"
	"testing"

	"github.com/clustermgr/clustermgr/pkg/keyring"
	"github.com/hashicorp/raft"
)

// testKeys and testKeys2 seal the secrets of the tests' commands.
var (
	testKeys  = mustKeyring(1)
	testKeys2 = mustKeyring(2)
)

func mustKeyring(b byte) *keyring.Keyring {
	k, err := keyring.New(bytes.Repeat([]byte{b}, keyring.KeySize))
	if err != nil {
		panic(err)
	}
	return k
}

func seal(t testing.TB, k *keyring.Keyring, purpose, plain string) string {
	t.Helper()
	s, err := k.Seal(purpose, plain)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestApply_PeerSecretFirstOneStays(t *testing.T) {
	a := newApplier()
	if err := a.apply(t, &SetPeerSecret{Secret: "short"}); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("a short secret: %v", err)
	}
	first, second := seal(t, testKeys, PeerSecretPurpose, strings.Repeat("a", 64)), seal(t, testKeys, PeerSecretPurpose, strings.Repeat("b", 64))
	a.must(t, &SetPeerSecret{Secret: first})
	a.must(t, &SetPeerSecret{Secret: second})
	if got := a.fsm.state.PeerSecret; got != first {
		t.Fatalf("peer secret %q, want the first one", got)
	}
}

// TestCheck_SecretsInClearAreNotProposed: a password or peer secret in
// clear is refused before it reaches the log, while an entry an older
// version wrote in clear still applies (the leader seals it afterwards).
func TestCheck_SecretsInClearAreNotProposed(t *testing.T) {
	f := NewFSM()
	for _, cmd := range []Command{
		&CreateCluster{Name: "orders", Settings: ClusterSettings{PGPassword: "pw"}},
		&SetPeerSecret{Secret: strings.Repeat("s", 64)},
	} {
		data, err := Encode(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Check(data); err == nil || !strings.Contains(err.Error(), "must be sealed") {
			t.Fatalf("%T in clear: check said %v", cmd, err)
		}
		if res := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data}); res != nil {
			t.Fatalf("%T in clear from an older log: %v", cmd, res)
		}
	}
	pw := "pw"
	data, _ := Encode(&UpdateCluster{Name: "orders", PGPassword: &pw})
	if err := f.Check(data); err == nil || !strings.Contains(err.Error(), "must be sealed") {
		t.Fatalf("update in clear: %v", err)
	}
	if f.state.Clusters["orders"].Settings.PGPassword != "pw" || f.state.PeerSecret == "" {
		t.Fatal("the old entries did not apply")
	}
	// A sealed password longer than a password may be sealed is refused.
	long := keyring.Prefix + strings.Repeat("a", 12) + ":" + strings.Repeat("A", MaxSealedLen)
	data, _ = Encode(&CreateCluster{Name: "big", Settings: ClusterSettings{PGPassword: long}})
	if err := f.Check(data); err == nil || !strings.Contains(err.Error(), "longer") {
		t.Fatalf("oversize sealed value: %v", err)
	}
}
