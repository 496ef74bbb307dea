// Package meta owns the manager group's replicated state: the Raft store
// (hashicorp/raft over raft-boltdb), the finite state machine that applies
// typed commands to the topology (clusters → shards → nodes), the member
// records that let followers find the leader's API, the bounded event
// history, the operations table, snapshots, and the leadership loop that
// starts and stops leader-only work.
//
// Nothing in this package talks to PostgreSQL. FSM.Apply is deterministic:
// times and identifiers are stamped into commands by the leader before they
// are proposed, so every replica reaches the same state from the same log.
package meta
