// Package service owns the REST API v1 of a manager replica: routing (chi),
// request decoding and validation, problem+json errors, reads at the
// requested consistency, forwarding of leader-only requests from a follower
// to the leader, and the loop by which a follower records its own API
// address in the replicated state.
package service
