// Package replica assembles one manager replica — the Raft store, the REST
// API server and the member registrar — and owns their lifetimes: Start
// brings them up in order, Stop hands leadership away and takes them down
// in reverse order, waiting for every routine it started. The server and
// dev commands and the multi-replica tests all run replicas through it.
package replica
