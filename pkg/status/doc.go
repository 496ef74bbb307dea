// Package status owns the health state machines: per node (unknown →
// healthy → suspect → down, debounced: a refused connection is definite, a
// timeout counts towards a threshold) and per shard (healthy, degraded,
// no-primary, failing-over, switching-over, paused). Machines are tables of
// (state, event) → state; only transitions are worth recording.
package status
