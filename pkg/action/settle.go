package action

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// receiver is a standby's WAL receiver as one query reads it.
type receiver struct {
	status   string // "" when none runs
	received collector.LSN
	host     string
	port     int
}

// from reports whether the receiver streams from n itself.
func (r receiver) from(n meta.Node) bool {
	return r.status == "streaming" && strings.EqualFold(r.host, n.Host) && r.port == n.Port
}

// describe says what the receiver does, for a step's detail or error.
func (r receiver) describe(want meta.Node) string {
	switch {
	case r.status == "":
		return "WAL receiver not running"
	case r.status == "streaming" && !r.from(want):
		return fmt.Sprintf("WAL receiver streaming from %s:%d, not from %s", r.host, r.port, want.Name)
	}
	return "WAL receiver " + r.status
}

func readReceiver(ctx context.Context, conn *pgx.Conn) (receiver, error) {
	var r receiver
	var recv string
	if err := conn.QueryRow(ctx, `SELECT COALESCE(r.status, ''), COALESCE(pg_last_wal_receive_lsn()::text, ''), COALESCE(r.sender_host, ''), COALESCE(r.sender_port, 0)
	  FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver r ON true`).Scan(&r.status, &recv, &r.host, &r.port); err != nil {
		return r, err
	}
	r.received, _ = collector.ParseLSN(recv)
	return r, nil
}

// standbysStreamWait bounds how long a switchover waits, at its end, for
// the other nodes to stream from the new primary; one that streams from
// another node, or from nowhere after repointAgainAfter, is repointed
// again.
const (
	standbysStreamWait = 10 * time.Second
	repointAgainAfter  = 2 * time.Second
)

// awaitStandbysStreaming ends a switchover on a settled shard: it waits,
// up to standbysStreamWait, until every other node (the old primary,
// just started as a standby, among them) streams from the new primary.
// Without it the switchover ended while they were still reconnecting,
// and one asked for at that moment was refused on the probes that saw
// it ("pg3 is not streaming from pg1"). A node that streams from another,
// or still from nowhere after repointAgainAfter, is repointed once more,
// as the repoint decision would at a later round. A node that cannot be
// connected to is not waited for (a standby down would hold every
// switchover for the whole wait). It, and one that still does not stream
// at the deadline, are named in the detail and left to the repoint and
// rejoin decisions: the new primary is in place, so the step never fails.
func awaitStandbysStreaming(ctx context.Context, x *opContext) (string, error) {
	p, err := x.node(x.op.Target)
	if err != nil {
		return "", err
	}
	pending := map[string]meta.Node{}
	for _, name := range sortedNodeNames(x.shard) {
		if name != p.Name {
			pending[name] = *x.shard.Nodes[name]
		}
	}
	start := time.Now()
	deadline := start.Add(standbysStreamWait)
	state := map[string]string{}
	var streaming, unreachable, again []string
	for {
		for _, name := range sortedNodeNames(x.shard) {
			n, ok := pending[name]
			if !ok {
				continue
			}
			r, reached, err := receiverOf(ctx, x, n)
			switch {
			case !reached:
				// Down or cut off: nothing to wait for.
				state[name] = "unreachable: " + err.Error()
				unreachable = append(unreachable, name)
				delete(pending, name)
			case err != nil:
				state[name] = err.Error()
			case r.from(p):
				streaming = append(streaming, name)
				delete(pending, name)
			default:
				state[name] = r.describe(p)
				if slices.Contains(again, name) || (r.status != "streaming" && time.Since(start) < repointAgainAfter) {
					break
				}
				// Streaming from another, or from nowhere for
				// long: the repoint's reload did not take, or
				// the receiver gave up; point it again, once.
				again = append(again, name)
				if err := Repoint(ctx, x.cluster, p, n); err != nil {
					state[name] += fmt.Sprintf("; repointing it again: %v", err)
				}
			}
		}
		if len(pending) == 0 || !time.Now().Before(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	slices.Sort(streaming)
	detail := fmt.Sprintf("[%s] stream from %s after %v", strings.Join(streaming, ", "), p.Name, time.Since(start).Round(time.Millisecond))
	if len(again) > 0 {
		detail += "; repointed again: " + strings.Join(again, ", ")
	}
	if len(pending)+len(unreachable) > 0 {
		var left []string
		for _, name := range sortedNodeNames(x.shard) {
			if _, ok := pending[name]; ok || slices.Contains(unreachable, name) {
				left = append(left, fmt.Sprintf("%s (%s)", name, state[name]))
			}
		}
		detail += "; left to the repoint and rejoin decisions: " + strings.Join(left, "; ")
	}
	return detail, nil
}

// receiverOf reads n's WAL receiver within a second, on the run's
// connection to n; reached is false when n cannot be connected to.
func receiverOf(ctx context.Context, x *opContext, n meta.Node) (_ receiver, reached bool, _ error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := x.conn(ctx, n)
	if err != nil {
		return receiver{}, false, err
	}
	r, err := readReceiver(ctx, conn)
	return r, true, err
}
