// Package pgconf owns what the manager lets an operator put into a
// PostgreSQL configuration: parameter names of the right shape, values
// without control characters, and none of the parameters the manager
// itself owns or that would let a setting run code or touch files.
// PostgreSQL's own check of names and values (type, range, enum) is the
// agent's, with the server's binary (agent.checkParameters).
package pgconf
