// Package decision owns the HA rules as pure functions: from a shard's
// declared topology, its nodes' health and samples, the manager replicas'
// votes and the shard settings, Decide returns what to do and why — fail
// over (with every candidate's score or the reason it was rejected),
// rejoin a node that must become a standby again, repoint a standby that
// streams from the wrong place, set the synchronous standby set, or do
// nothing with a reason. Nothing here does I/O or reads a clock.
package decision
