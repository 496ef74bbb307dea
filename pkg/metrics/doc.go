// Package metrics owns a replica's Prometheus metrics: its own registry
// (never the global one), the instruments the API, the store and the
// detector feed as things happen, and the fleet's picture (nodes, shards,
// operations, Raft), read from a snapshot function at scrape time and
// written straight to the text format. It does no I/O of its own.
//
// Label cardinality is bounded by design: per node series carry cluster,
// shard and node (one series per node and metric, plus one per state of
// the one-hot state gauges); the API's carry the route pattern (not the
// path), the method and the status code; histograms carry no node label.
package metrics
