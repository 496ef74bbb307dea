package fleetsim

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// Shard is a simulated shard: its primary first, then its standbys.
type Shard struct {
	Name    string
	Nodes   []*Node
	Servers []*Server // Servers[i] serves Nodes[i]
}

// Fleet is many simulated shards served from this process, each node on a
// port of its own on host.
type Fleet struct {
	Shards []*Shard
	// Probes counts the periods between two probes of a node on one
	// connection, over the whole fleet.
	Probes *ProbeStats
	byAddr map[string]*Node // host:port →
}

// Node returns the node served at host:port (nil when none is).
func (f *Fleet) Node(host string, port int) *Node {
	return f.byAddr[net.JoinHostPort(host, strconv.Itoa(port))]
}

// NewFleet starts shards shards of perShard nodes each (a primary and
// perShard-1 standbys) on host; Close stops them.
func NewFleet(host string, shards, perShard int, now func() time.Time) (*Fleet, error) {
	return NewFleetFrom(host, 1, shards, perShard, now)
}

// NewFleetFrom is NewFleet with shards numbered from first (several
// processes serve one fleet).
func NewFleetFrom(host string, first, shards, perShard int, now func() time.Time) (*Fleet, error) {
	f := &Fleet{byAddr: map[string]*Node{}, Probes: &ProbeStats{}}
	for i := range shards {
		sh := &Shard{Name: fmt.Sprintf("s%d", first+i)}
		f.Shards = append(f.Shards, sh)
		var primary *Node
		for j := range perShard {
			ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("listen for %s node %d: %w", sh.Name, j+1, err)
			}
			port := ln.Addr().(*net.TCPAddr).Port
			name := fmt.Sprintf("pg%d", j+1)
			var n *Node
			if j == 0 {
				n = NewPrimary(name, host, port, 0x3000000)
				primary = n
			} else {
				n = NewStandby(name, host, port, primary)
			}
			n.resolve = f.Node // read only once the fleet is built
			f.byAddr[net.JoinHostPort(host, strconv.Itoa(port))] = n
			sh.Nodes = append(sh.Nodes, n)
			sh.Servers = append(sh.Servers, ServeSessions(ln, n.Sessions(now, f.Probes)))
		}
	}
	return f, nil
}

// Nodes counts the fleet's nodes.
func (f *Fleet) Nodes() int {
	n := 0
	for _, sh := range f.Shards {
		n += len(sh.Nodes)
	}
	return n
}

// Close stops every server and waits for them.
func (f *Fleet) Close() {
	for _, sh := range f.Shards {
		for _, s := range sh.Servers {
			s.Close()
		}
	}
}
