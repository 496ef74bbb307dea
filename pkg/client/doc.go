// Package client is the Go client of the clustermgr REST API v1. It tries a
// list of manager replicas in turn, moving on when one cannot be reached or
// has no leader, retries briefly while the group elects a leader, and turns
// problem+json answers into *Error values. The CLI is built on it.
package client
