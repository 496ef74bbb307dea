package action

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/clustermgr/clustermgr/pkg/meta"
)

// conns keeps one connection per node for the steps of one run of an
// operation: a switchover's steps inside the write outage (catch-up,
// promotion) use the connection an earlier step opened instead of
// connecting again. Steps run one at a time, so a connection is never
// used concurrently. A connection that failed is dropped and opened
// again on the next use.
type conns struct {
	open map[string]*pgx.Conn
	// promoted is what the promote step read of the new primary at once
	// (its timeline and history files), for the record of its promotion.
	promoted *promotedState
}

// promotedState is a just-promoted server's timeline and history files.
type promotedState struct {
	timeline uint32
	history  map[string]string
}

func newConns() *conns { return &conns{open: map[string]*pgx.Conn{}} }

func connKey(n meta.Node) string { return fmt.Sprintf("%s@%s:%d", n.Name, n.Host, n.Port) }

// adopt keeps conn as the connection to n, unless there is one.
func (cs *conns) adopt(n meta.Node, conn *pgx.Conn) {
	if _, ok := cs.open[connKey(n)]; ok {
		_ = conn.Close(context.Background())
		return
	}
	cs.open[connKey(n)] = conn
}

// get returns a live connection to n, opening one when there is none or
// the last one is closed or does not answer a ping.
func (cs *conns) get(ctx context.Context, c meta.Cluster, n meta.Node) (*pgx.Conn, error) {
	key := connKey(n)
	if conn, ok := cs.open[key]; ok {
		if !conn.IsClosed() && conn.Ping(ctx) == nil {
			return conn, nil
		}
		_ = conn.Close(context.Background())
		delete(cs.open, key)
	}
	conn, err := connect(ctx, c, n)
	if err != nil {
		return nil, err
	}
	cs.open[key] = conn
	return conn, nil
}

// close closes every connection.
func (cs *conns) close() {
	for k, conn := range cs.open {
		_ = conn.Close(context.Background())
		delete(cs.open, k)
	}
}
