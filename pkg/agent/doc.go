// Package agent owns the host agent — the small authenticated HTTP server
// that runs beside PostgreSQL and does what SQL cannot: report the state of
// a data directory, start, stop (or kill, to fence), restart, promote,
// rewind from a new primary, and configure a server as a standby — and the
// manager's client for it. Every mutating command carries the shard epoch;
// the agent refuses one older than the newest it has seen for that data
// directory, so a deposed manager leader cannot act on a shard.
package agent
