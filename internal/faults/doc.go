// Package faults is the fault suite's harness: a manager group of real
// `clustermgr server` processes, one `clustermgr agent` process per
// database host, a provisioned PostgreSQL shard, a client that inserts
// unique ids through a libpq multi-host URI with
// target_session_attrs=read-write, a poller of every node's
// pg_is_in_recovery(), and the checks of what a fault did: acknowledged
// rows lost, writes acknowledged by a deposed primary, the write gap, and
// whether every node really streams again. The scenarios live in
// faults_test.go (build tag "faults", run by `make test-faults`).
package faults
