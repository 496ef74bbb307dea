// Package fleetsim is the fleet simulator: servers on loopback that speak
// the real PostgreSQL wire protocol (pgproto3: startup, simple and
// extended query, as pgx uses them) and answer queries through a Handler,
// and an agent for each node that answers the agent API's commands on it
// (Agent), so that the manager's probes, lease renewals, role
// declarations and operations can run against thousands of fake nodes
// from one process.
package fleetsim
