// Package ha wires the HA pipeline of a manager replica: every replica
// runs the detector over every registered node and keeps the health
// machines; followers send what they see down to the leader; the leader
// alone turns views, votes and settings into decisions (pkg/decision) and
// carries them out as operations (pkg/action), resuming any operation a
// previous leader left unfinished. It also answers the API's questions
// about shards (health, LSNs, last decision) and starts manual
// operations (switchover, failover, rejoin).
package ha
