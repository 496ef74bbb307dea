// Package pgctl runs PostgreSQL's own programs — initdb, pg_ctl,
// pg_basebackup, pg_rewind, pg_controldata — as the database OS user (the
// server refuses to run as root), and reads what they report. The host
// agent and the test harness both drive PostgreSQL through it.
package pgctl
