package meta

import (
	"strings"
	"testing"
)

func TestApply_PeerSecretFirstOneStays(t *testing.T) {
	a := newApplier()
	if err := a.apply(t, &SetPeerSecret{Secret: "short"}); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("a short secret: %v", err)
	}
	first, second := strings.Repeat("a", 64), strings.Repeat("b", 64)
	a.must(t, &SetPeerSecret{Secret: first})
	a.must(t, &SetPeerSecret{Secret: second})
	if got := a.fsm.state.PeerSecret; got != first {
		t.Fatalf("peer secret %q, want the first one", got)
	}
}
