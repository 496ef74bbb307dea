package action

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
	// settlePoll is how often the nodes are read; each read gets at
	// most a second.
	settlePoll = 50 * time.Millisecond
)

// awaitStandbysStreaming ends a switchover on a settled shard: it waits,
// up to standbysStreamWait, until every other node (the old primary,
// just started as a standby, among them) streams from the new primary.
// Without it the switchover ended while they were still reconnecting,
// and one asked for at that moment was refused on the probes that saw
// it ("pg3 is not streaming from pg1"). A node that streams from another,
// or still from nowhere after repointAgainAfter, is repointed once more,
// as the repoint decision would at a later round.
//
// It waits for no node that cannot: one in maintenance (its operator's),
// one that cannot be connected to twice in a row (a standby down would
// hold every switchover for the whole wait; a server that answers with
// an error, starting up or full, is connected to), and none at all once
// the new primary is not a running primary any more (the operation
// cannot be preempted: a failover waits for its end). The step never
// fails: the new primary is recorded, and what is left is named in the
// detail for the repoint and rejoin decisions.
func awaitStandbysStreaming(ctx context.Context, x *opContext) (string, error) {
	p, err := x.node(x.op.Target)
	if err != nil {
		return "", err
	}
	if rec := x.shard.Primary(); rec == nil || rec.Name != p.Name {
		return "", fmt.Errorf("%s is not the recorded primary of shard %s/%s", p.Name, x.op.Cluster, x.op.Shard)
	}
	w := newSettle(p)
	for _, name := range sortedNodeNames(x.shard) {
		if n := *x.shard.Nodes[name]; name != p.Name {
			if n.Maintenance {
				w.skip(name, "in maintenance, not waited for")
				continue
			}
			w.pending = append(w.pending, n)
		}
	}
	deadline := w.start.Add(standbysStreamWait)
	// Every read and repoint ends by the deadline (and a second).
	wctx, cancel := context.WithDeadline(ctx, deadline.Add(time.Second))
	defer cancel()
	for len(w.pending) > 0 && time.Now().Before(deadline) {
		if why := primaryGone(wctx, x, p); why != "" {
			w.abandon(why)
			break
		}
		for _, n := range slices.Clone(w.pending) {
			w.look(wctx, x, n)
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		if len(w.pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(settlePoll):
		}
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	return w.detail(), nil
}

// settle is what awaitStandbysStreaming has found so far.
type settle struct {
	primary   meta.Node
	start     time.Time
	pending   []meta.Node       // not streaming from the primary yet
	streaming []string          // streaming from it
	left      map[string]string // given up on, and why
	state     map[string]string // what the last look at a pending node saw
	again     []string          // repointed once more
	failed    map[string]int    // connection failures in a row
	gone      string            // why the primary was not waited on
}

func newSettle(p meta.Node) *settle {
	return &settle{primary: p, start: time.Now(), left: map[string]string{}, state: map[string]string{}, failed: map[string]int{}}
}

func (w *settle) skip(name, why string) {
	w.left[name] = why
	w.pending = slices.DeleteFunc(w.pending, func(n meta.Node) bool { return n.Name == name })
}

// abandon stops waiting for every pending node: the primary is gone.
func (w *settle) abandon(why string) {
	w.gone = why
	for _, n := range slices.Clone(w.pending) {
		w.skip(n.Name, w.stateOf(n.Name))
	}
}

func (w *settle) stateOf(name string) string {
	if s := w.state[name]; s != "" {
		return s
	}
	return "not read"
}

// look reads n's WAL receiver once and acts on what it shows.
func (w *settle) look(ctx context.Context, x *opContext, n meta.Node) {
	r, err := receiverOf(ctx, x, n)
	var pe *pgconn.PgError
	switch {
	case err != nil && !errors.As(err, &pe) && ctx.Err() == nil:
		w.failed[n.Name]++
		if w.failed[n.Name] >= 2 {
			w.skip(n.Name, "unreachable: "+err.Error())
			return
		}
		w.state[n.Name] = err.Error()
	case err != nil:
		w.failed[n.Name] = 0
		w.state[n.Name] = err.Error()
	case r.from(w.primary):
		w.streaming = append(w.streaming, n.Name)
		w.pending = slices.DeleteFunc(w.pending, func(m meta.Node) bool { return m.Name == n.Name })
	default:
		w.failed[n.Name] = 0
		w.state[n.Name] = r.describe(w.primary)
		if slices.Contains(w.again, n.Name) || (r.status != "streaming" && time.Since(w.start) < repointAgainAfter) {
			return
		}
		// Streaming from another, or from nowhere for long: the
		// repoint's reload did not take, or the receiver gave up. Point
		// it again, once.
		if err := Repoint(ctx, x.cluster, w.primary, n); err != nil {
			w.skip(n.Name, "repointing it again failed: "+err.Error())
			return
		}
		w.again = append(w.again, n.Name)
	}
}

func (w *settle) detail() string {
	slices.Sort(w.streaming)
	d := fmt.Sprintf("[%s] stream from %s after %v", strings.Join(w.streaming, ", "), w.primary.Name, time.Since(w.start).Round(time.Millisecond))
	if len(w.streaming) == 0 {
		d = fmt.Sprintf("none streams from %s after %v", w.primary.Name, time.Since(w.start).Round(time.Millisecond))
	}
	if len(w.again) > 0 {
		d += "; repointed again: " + strings.Join(w.again, ", ")
	}
	if w.gone != "" {
		d += "; not waited for further: " + w.gone
	}
	var left []string
	for _, n := range w.pending {
		left = append(left, fmt.Sprintf("%s (%s after %v)", n.Name, w.stateOf(n.Name), standbysStreamWait))
	}
	for name, why := range w.left {
		left = append(left, fmt.Sprintf("%s (%s)", name, why))
	}
	if len(left) > 0 {
		slices.Sort(left)
		d += "; left to the repoint and rejoin decisions: " + strings.Join(left, "; ")
	}
	return d
}

// primaryGone says why p is no longer a running primary ("" while it is):
// unreachable, or in recovery.
func primaryGone(ctx context.Context, x *opContext, p meta.Node) string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := x.conn(ctx, p)
	if err != nil {
		return fmt.Sprintf("%s, the new primary, is unreachable (%v)", p.Name, err)
	}
	if err := serving(ctx, conn, true); err != nil {
		return fmt.Sprintf("%s, the new primary, does not serve as one (%v)", p.Name, err)
	}
	return ""
}

// receiverOf reads n's WAL receiver within a second, on the run's
// connection to n.
func receiverOf(ctx context.Context, x *opContext, n meta.Node) (receiver, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := x.conn(ctx, n)
	if err != nil {
		return receiver{}, err
	}
	return readReceiver(ctx, conn)
}
