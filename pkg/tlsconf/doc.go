// Package tlsconf loads a replica's certificate, key and the group's CA
// and gives the TLS configurations built on them: mutual TLS between
// replicas (Raft, forwarded requests, followers' views) and TLS for the
// REST API, whose clients authenticate with tokens instead.
package tlsconf
