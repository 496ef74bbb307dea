// Package pgtest starts real PostgreSQL servers for tests: a primary made
// by initdb (with data checksums, so pg_rewind works) and standbys made by
// pg_basebackup -R, on free loopback ports, run as the postgres OS user when
// the test runs as root, stopped in immediate mode and removed in
// t.Cleanup. It has helpers to kill -9, SIGSTOP and SIGCONT a server and to
// run a counted write loop.
package pgtest
