// Package collector reads the replication state of one PostgreSQL node in
// one round trip: role, timeline, current / received / replayed LSN, the
// WAL receiver (which primary a standby streams from), the standbys a
// primary serves (state, sync state, LSNs), connections against
// max_connections, replication slots and settings pending a restart. The
// samples live in the leader's memory; they are never written to Raft.
// Conn is a connection kept for probes: the socket alone between them,
// the probe statement prepared on it, its answer read in binary (row.go,
// which Collect shares).
package collector
