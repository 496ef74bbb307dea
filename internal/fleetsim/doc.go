// Package fleetsim is the fleet simulator's PostgreSQL side: servers on
// loopback that speak the real wire protocol (pgproto3: startup, simple
// and extended query, as pgx uses them) and answer queries through a
// Handler, so that the manager's probes and operations can run against
// thousands of fake nodes from one process.
package fleetsim
