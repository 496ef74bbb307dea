package meta

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// Peer is a bootstrap member: a replica id and its Raft address.
type Peer struct {
	ID       string
	RaftAddr string
}

// ParsePeers parses "m1=127.0.0.1:7001,m2=127.0.0.1:7002".
func ParsePeers(s string) ([]Peer, error) {
	var out []Peer
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("peer %q is not id=host:port", part)
		}
		if seen[id] {
			return nil, fmt.Errorf("peer id %q appears twice", id)
		}
		seen[id] = true
		out = append(out, Peer{ID: id, RaftAddr: addr})
	}
	return out, nil
}

// Timing holds the Raft timing settings. The defaults suit a LAN.
type Timing struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	SnapshotInterval   time.Duration
	SnapshotThreshold  uint64
	TrailingLogs       uint64
	MaxAppendEntries   int
}

// DefaultTiming returns LAN timing: a follower notices a dead leader after
// 300-600 ms (hashicorp/raft randomises within [timeout, 2×timeout)) and an
// election over a LAN takes a few milliseconds, so a new leader commits
// within about a second, against ~1.8 s median with the library's 1 s
// defaults.
func DefaultTiming() Timing {
	return Timing{
		HeartbeatTimeout:   300 * time.Millisecond,
		ElectionTimeout:    300 * time.Millisecond,
		LeaderLeaseTimeout: 300 * time.Millisecond,
		CommitTimeout:      20 * time.Millisecond,
		SnapshotInterval:   30 * time.Second,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		MaxAppendEntries:   64,
	}
}

// LeaderTask is leader-only work. It runs from the moment this replica has
// caught up as leader until ctx is cancelled on loss of leadership, and must
// return promptly after that.
type LeaderTask func(ctx context.Context)

// Config configures a Store.
type Config struct {
	NodeID   string
	DataDir  string // raft.db and snapshots; unused with InMemory
	RaftAddr string // bind and advertise address of the TCP transport
	APIAddr  string // recorded in the member record, e.g. http://127.0.0.1:8001
	Peers    []Peer // bootstrap configuration; empty to wait for a join

	Timing       Timing
	ApplyTimeout time.Duration // upper bound of one Apply when ctx has no deadline

	// Transport replaces the TCP transport (tests use raft.InmemTransport).
	Transport raft.Transport
	// TLS, when set, runs the Raft transport over mutual TLS with this
	// configuration (tlsconf.Bundle.Peer).
	TLS *tls.Config
	// InMemory keeps log, stable store and snapshots in memory (tests).
	InMemory bool

	Now         func() time.Time
	Logger      *slog.Logger
	LeaderTasks []LeaderTask
	// OnApply, when set, is told how long each command proposed on this
	// replica took and how it ended: "ok", "refused" (the state machine
	// said no, before or after proposing) or "error" (not committed).
	OnApply func(d time.Duration, outcome string)
}

func (c *Config) withDefaults() Config {
	out := *c
	if out.Timing == (Timing{}) {
		out.Timing = DefaultTiming()
	}
	if out.ApplyTimeout == 0 {
		out.ApplyTimeout = 10 * time.Second
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	return out
}
