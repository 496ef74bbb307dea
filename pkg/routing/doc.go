// Package routing owns how clients find a shard's primary and its
// replicas: the libpq multi-host connection strings of a shard (read-write
// and read-only) and the HAProxy configuration whose checks poll the
// agents' health checks (agent.HealthHandler). It is pure: it renders
// from the topology it is given.
package routing
