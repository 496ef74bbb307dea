package meta

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestGuardedTransport_CloseWaitsForHeartbeats: closing the heartbeats
// waits for one under way (it may still write the current term) and drops
// any that come after, so the stores can close safely.
func TestGuardedTransport_CloseWaitsForHeartbeats(t *testing.T) {
	g := &guardedTransport{}
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	h := g.guard(func(raft.RPC) {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		h(raft.RPC{})
	}()
	<-entered
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		g.closeHeartbeats()
	}()
	select {
	case <-closed:
		t.Fatal("closeHeartbeats returned while a heartbeat was under way")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-done
	<-closed
	h(raft.RPC{})
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d heartbeats reached raft, want the one before the close", n)
	}
}
