// Package fencing owns the fencing token: the (Raft term, shard epoch)
// pair every command to an agent carries, so that an agent refuses the
// commands of a deposed manager leader and of a superseded operation. The
// leader's term travels in the context of its leader-only work.
package fencing
