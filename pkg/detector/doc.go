// Package detector probes PostgreSQL nodes: it keeps one connection per
// node, reads a collector sample through it with a timeout, and before it
// reports a failure it retries once on a fresh connection (a stuck
// connection is not a dead server). It tells a refused connection, which
// is definite, from a timeout, which the status machines debounce. Every
// manager replica runs it; followers send their view to the leader.
package detector
