package routing

import (
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/clustermgr/clustermgr/pkg/api"
)

// Connection returns the libpq connection strings of a shard whose nodes
// are nodes (the declared primary's role is "primary"), for user. The
// read-write string lists the primary first and has libpq keep trying
// the others (target_session_attrs=read-write): after a failover it
// finds the new primary without a change. The read-only string lists the
// standbys first and prefers one (prefer-standby, libpq 14 and later),
// falling back to the primary when none answers.
func Connection(cluster, shard, user string, nodes []api.Node) api.Connection {
	var primary, standbys []api.Node
	for _, n := range nodes {
		if n.Role == "primary" {
			primary = append(primary, n)
		} else {
			standbys = append(standbys, n)
		}
	}
	if user == "" {
		user = "postgres"
	}
	rw := append(append([]api.Node(nil), primary...), standbys...)
	ro := append(append([]api.Node(nil), standbys...), primary...)
	return api.Connection{
		Cluster:   cluster,
		Shard:     shard,
		ReadWrite: uri(user, rw, "read-write"),
		ReadOnly:  uri(user, ro, "prefer-standby"),
	}
}

func uri(user string, nodes []api.Node, attrs string) string {
	hosts := make([]string, 0, len(nodes))
	for _, n := range nodes {
		hosts = append(hosts, net.JoinHostPort(n.Host, strconv.Itoa(n.Port)))
	}
	q := url.Values{}
	q.Set("target_session_attrs", attrs)
	q.Set("connect_timeout", "2")
	return "postgresql://" + url.User(user).String() + "@" + strings.Join(hosts, ",") + "/postgres?" + q.Encode()
}
