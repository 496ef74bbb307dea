package meta

import (
	"sync"

	"github.com/hashicorp/raft"
)

// guardedTransport is raft's TCP transport with a guard on the heartbeat
// fast path. raft runs heartbeats on the transport's own goroutines, and
// one that passed raft's shutdown check can still write the current term
// after Raft.Shutdown has returned; with the stores closed that write
// panics ("failed to save current term: database not open",
// hashicorp/raft#717). close waits for heartbeats under way and drops
// later ones, so the stores can be closed after it.
type guardedTransport struct {
	*raft.NetworkTransport
	mu     sync.RWMutex
	closed bool
}

// SetHeartbeatHandler installs cb behind the guard.
func (g *guardedTransport) SetHeartbeatHandler(cb func(rpc raft.RPC)) {
	if cb == nil {
		g.NetworkTransport.SetHeartbeatHandler(nil)
		return
	}
	g.NetworkTransport.SetHeartbeatHandler(g.guard(cb))
}

// guard returns cb run under the guard.
func (g *guardedTransport) guard(cb func(rpc raft.RPC)) func(rpc raft.RPC) {
	return func(rpc raft.RPC) {
		g.mu.RLock()
		defer g.mu.RUnlock()
		if g.closed {
			// No answer: the transport is shutting down, and its
			// goroutine gives up waiting for one when it has.
			return
		}
		cb(rpc)
	}
}

// closeHeartbeats waits for the heartbeats under way and stops any more
// from reaching raft.
func (g *guardedTransport) closeHeartbeats() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
