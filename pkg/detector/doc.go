// Package detector probes PostgreSQL nodes: it keeps one connection per
// node (a collector.Conn: the socket alone between probes), reads a
// collector sample through it with a deadline, and when the
// kept connection was broken (not timed out) it retries once on a fresh
// connection (a server restart is not a dead server). It tells a refused connection, which
// is definite, from a timeout, which the status machines debounce. Every
// manager replica runs it; followers send their view to the leader.
package detector
