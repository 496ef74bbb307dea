package fleetsim

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Shard is a simulated shard: its primary first, then its standbys.
type Shard struct {
	Name    string
	Nodes   []*Node
	Servers []*Server // Servers[i] serves Nodes[i]
	Agents  []*Agent  // Agents[i] is Nodes[i]'s (after Fleet.StartAgents)
}

// Crash crashes node i of the shard: its server refuses connections
// and drops those it has, and its standbys stop streaming from it.
func (sh *Shard) Crash(i int) {
	sh.Nodes[i].Down()
	sh.Servers[i].SetFault(Fault{Refuse: true})
}

// Fleet is many simulated shards served from this process, each node on a
// port of its own on host.
type Fleet struct {
	Shards []*Shard
	mu     sync.Mutex
	probes map[string]*ProbeStats // application_name →
	byAddr map[string]*Node       // host:port →
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
	f := &Fleet{byAddr: map[string]*Node{}, probes: map[string]*ProbeStats{}}
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

// StartAgents starts an agent for every node, each on a port of its own
// on host, taking token.
func (f *Fleet) StartAgents(host, token string) error {
	for _, sh := range f.Shards {
		for i, n := range sh.Nodes {
			ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
			if err != nil {
				return fmt.Errorf("listen for the agent of %s %s: %w", sh.Name, n.Name, err)
			}
			sh.Agents = append(sh.Agents, ServeAgent(ln, token, n, sh.Servers[i]))
		}
	}
	return nil
}

// Nodes counts the fleet's nodes.
func (f *Fleet) Nodes() int {
	n := 0
	for _, sh := range f.Shards {
		n += len(sh.Nodes)
	}
	return n
}

// Probes returns the periods between two probes of a node on one
// connection, over the whole fleet, of the connections of application
// app (each manager replica's detector names itself).
func (f *Fleet) Probes(app string) *ProbeStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.probes[app]
	if p == nil {
		p = &ProbeStats{}
		f.probes[app] = p
	}
	return p
}

// ProbeApps returns the application names that probed the fleet.
func (f *Fleet) ProbeApps() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for a := range f.probes {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Accepted is how many connections the fleet's servers accepted.
func (f *Fleet) Accepted() uint64 {
	var n uint64
	for _, sh := range f.Shards {
		for _, s := range sh.Servers {
			n += s.Accepted()
		}
	}
	return n
}

// Close stops every server and waits for them.
func (f *Fleet) Close() {
	for _, sh := range f.Shards {
		for _, s := range sh.Servers {
			s.Close()
		}
		for _, a := range sh.Agents {
			a.Close()
		}
	}
}
