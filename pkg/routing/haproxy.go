package routing

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/api"
)

// HAProxyOptions shape an HAProxy configuration.
type HAProxyOptions struct {
	// Bind is the address HAProxy listens on ("" is every address).
	Bind string
	// WritePort is the first shard's write port; its read port is the
	// next one, and each further shard takes the next two.
	WritePort int
	// MaxLag keeps a replica out of the read port while it lags more
	// (bytes such as 16MB, or a duration such as 10s; "" is any lag).
	MaxLag string
	// Interval is how often HAProxy checks a server; a server that is
	// down is checked four times as often, so a new primary takes
	// writes within a quarter of it.
	Interval time.Duration
	// StatsPort, when set, serves HAProxy's statistics page there.
	StatsPort int
}

// HAProxyShard is one shard to route, with its agents' health URLs by
// agent name.
type HAProxyShard struct {
	Shard  api.Shard
	Health map[string]string
}

// HAProxy returns an HAProxy (2.2 or later) configuration with, per
// shard, a write port whose only server in service is the node whose
// agent answers /primary, and a read port over the standbys whose agents
// answer /replica (within MaxLag). Servers are named
// cluster.shard.node, the name their agent knows them by. It refuses a
// node without an agent that serves health checks.
func HAProxy(shards []HAProxyShard, o HAProxyOptions) (string, error) {
	if o.WritePort <= 0 || o.WritePort+2*len(shards) > 65536 {
		return "", fmt.Errorf("write port %d leaves no room for %d shards", o.WritePort, len(shards))
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Interval < 100*time.Millisecond {
		return "", fmt.Errorf("check interval %v is below 100ms", o.Interval)
	}
	lagQuery := ""
	if o.MaxLag != "" {
		if strings.ContainsAny(o.MaxLag, " &#%\"'\\") {
			return "", fmt.Errorf("max lag %q is not a byte count or a duration", o.MaxLag)
		}
		lagQuery = "&lag=" + url.QueryEscape(o.MaxLag)
	}
	var b strings.Builder
	b.WriteString(`# HAProxy configuration written by clustermgr haproxy-config.
# Each write port sends connections to the one node whose agent answers
# /primary with 200: the node the manager declared primary, writable, with
# a live lease. Each read port spreads them over the standbys whose agents
# answer /replica (streaming` + map[bool]string{true: ", within " + o.MaxLag, false: ""}[o.MaxLag != ""] + `). A server that turns down has
# its sessions cut, so clients reconnect to the new primary. HAProxy counts
# a server up until its first check, within one check interval of its
# start: send clients once it has checked them all.
global
    maxconn 4096

defaults
    mode tcp
    timeout connect 2s
    timeout client 30m
    timeout server 30m
    timeout check 1s
`)
	if o.StatsPort > 0 {
		fmt.Fprintf(&b, `
listen stats
    mode http
    bind %s
    stats enable
    stats uri /
    stats refresh 1s
`, net.JoinHostPort(o.Bind, strconv.Itoa(o.StatsPort)))
	}
	// A primary that fails one check is checked again at once and taken
	// out at the second failure (a dropped check does not cut every
	// write session); a standby leaves the read port at its first (a
	// just-promoted one takes no more reads).
	down := o.Interval / 4
	defaults := func(fall int) string {
		return fmt.Sprintf("    default-server inter %s fastinter %s downinter %s rise 1 fall %d on-marked-down shutdown-sessions\n",
			ms(o.Interval), ms(down), ms(down), fall)
	}
	port := o.WritePort
	for _, s := range shards {
		var servers []string
		for _, n := range s.Shard.Nodes {
			if n.Agent == "" {
				return "", fmt.Errorf("node %s/%s/%s has no agent: its role cannot be checked", s.Shard.Cluster, s.Shard.Name, n.Name)
			}
			h, ok := s.Health[n.Agent]
			if !ok || h == "" {
				return "", fmt.Errorf("agent %s of node %s/%s/%s serves no health checks: register its --health-addr with clustermgr agents add %s URL --health-url http://HOST:8008",
					n.Agent, s.Shard.Cluster, s.Shard.Name, n.Name, n.Agent)
			}
			u, err := url.Parse(h)
			if err != nil || u.Scheme != "http" || u.Hostname() == "" || u.Port() == "" {
				return "", fmt.Errorf("agent %s: health URL %q is not http://host:port", n.Agent, h)
			}
			servers = append(servers, fmt.Sprintf("    server %s %s check addr %s port %s\n",
				agent.NodeKey(s.Shard.Cluster, s.Shard.Name, n.Name), net.JoinHostPort(n.Host, strconv.Itoa(n.Port)), bracketed(u.Hostname()), u.Port()))
		}
		name := s.Shard.Cluster + "." + s.Shard.Name
		for _, l := range []struct {
			suffix, check, balance, retries string
			port, fall                      int
		}{
			// A write connection refused by a primary that just died
			// fails at once (the client tries again and finds the new
			// one) instead of waiting out HAProxy's one-second pause
			// between retries of the same server.
			{"write", "/primary?node=%[srv_name]", "first", "    retries 0\n", port, 2},
			// A read connection refused by a replica goes to another.
			{"read", "/replica?node=%[srv_name]" + lagQuery, "roundrobin", "    retries 2\n    option redispatch 1\n", port + 1, 1},
		} {
			fmt.Fprintf(&b, "\nlisten %s.%s\n    bind %s\n    balance %s\n%s    option httpchk\n    http-check send meth GET uri-lf %s\n    http-check expect status 200\n%s",
				name, l.suffix, net.JoinHostPort(o.Bind, strconv.Itoa(l.port)), l.balance, l.retries, l.check, defaults(l.fall))
			for _, sv := range servers {
				b.WriteString(sv)
			}
		}
		port += 2
	}
	return b.String(), nil
}

// bracketed writes an IPv6 address in brackets, as HAProxy reads one
// without a port.
func bracketed(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

func ms(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}
