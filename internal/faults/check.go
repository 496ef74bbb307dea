package faults

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// nodeState is what PostgreSQL itself says of one node.
type nodeState struct {
	inRecovery bool
	senderPort int      // a standby's WAL receiver, streaming from there
	streaming  []string // a primary's streaming standbys (application_name)
}

func (c *Cluster) readNode(ctx context.Context, n *Node) (nodeState, error) {
	var st nodeState
	conn, err := pgx.Connect(ctx, "postgres://postgres:"+pgPassword+"@127.0.0.1:"+strconv.Itoa(n.Port)+"/postgres?connect_timeout=1")
	if err != nil {
		return st, err
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&st.inRecovery); err != nil {
		return st, err
	}
	if st.inRecovery {
		err := conn.QueryRow(ctx, "SELECT COALESCE(sender_port, 0) FROM pg_stat_wal_receiver WHERE status = 'streaming'").Scan(&st.senderPort)
		if err != nil && err != pgx.ErrNoRows {
			return st, err
		}
		return st, nil
	}
	rows, err := conn.Query(ctx, "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming'")
	if err != nil {
		return st, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return st, err
		}
		st.streaming = append(st.streaming, name)
	}
	return st, rows.Err()
}

// Healed checks on PostgreSQL that exactly one node is writable, that it
// is the primary the managers declare, and that every other node is in
// recovery and streams from it.
func (c *Cluster) Healed() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var primary *Node
	states := map[string]nodeState{}
	for _, n := range c.Nodes {
		st, err := c.readNode(ctx, n)
		if err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		states[n.Name] = st
		if !st.inRecovery {
			if primary != nil {
				return fmt.Errorf("%s and %s are both writable", primary.Name, n.Name)
			}
			primary = n
		}
	}
	if primary == nil {
		return fmt.Errorf("no writable node")
	}
	if declared := c.Primary(); declared != primary.Name {
		return fmt.Errorf("%s is writable but the managers declare %q", primary.Name, declared)
	}
	var missing []string
	for _, n := range c.Nodes {
		if n != primary && states[n.Name].senderPort != primary.Port {
			missing = append(missing, n.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("[%s] do not stream from %s", strings.Join(missing, ", "), primary.Name)
	}
	if len(states[primary.Name].streaming) != len(c.Nodes)-1 {
		return fmt.Errorf("%s serves %v", primary.Name, states[primary.Name].streaming)
	}
	return nil
}

// WaitHealed waits until Healed holds, and says why not when it does not.
func (c *Cluster) WaitHealed(d time.Duration) error {
	var err error
	if waitFor(d, func() bool { err = c.Healed(); return err == nil }) {
		return nil
	}
	return err
}

// Present returns the ids in table t on the primary.
func (c *Cluster) Present() (map[int64]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := c.Primary()
	if p == "" {
		return nil, fmt.Errorf("no primary")
	}
	conn, err := pgx.Connect(ctx, "postgres://postgres:"+pgPassword+"@127.0.0.1:"+strconv.Itoa(c.Node(p).Port)+"/postgres")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT id FROM t")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[id] = true
	}
	return out, rows.Err()
}

// Lost returns the acknowledged ids missing from present.
func Lost(acks []Ack, present map[int64]bool) []int64 {
	var out []int64
	for _, a := range acks {
		if !present[a.ID] {
			out = append(out, a.ID)
		}
	}
	return out
}

// StaleWrites counts writes acknowledged on an older timeline after one
// on a newer timeline was acknowledged: writes a deposed primary took
// while another one served (split brain).
func StaleWrites(acks []Ack) int {
	var newest int64
	n := 0
	for _, a := range acks {
		if a.Timeline < newest {
			n++
		}
		newest = max(newest, a.Timeline)
	}
	return n
}

// WriteGap is the longest pause between two acknowledged writes in
// [from, to]: the outage as the client saw it, and when it began (the
// last acknowledgement before it).
func WriteGap(acks []Ack, from, to time.Time) (time.Duration, time.Time) {
	var gap time.Duration
	var at, prev time.Time
	for _, a := range acks {
		if a.At.Before(from) {
			prev = a.At
			continue
		}
		if !prev.IsZero() && a.At.Sub(prev) > gap {
			gap, at = a.At.Sub(prev), prev
		}
		prev = a.At
		if a.At.After(to) {
			break
		}
	}
	return gap, at
}

// gapAcross is the client's outage across a fault at start: from the last
// write acknowledged by the old server (oldPort) — before the fault, or
// after it while a switchover still lets the old primary commit — to the
// first acknowledged by another server (any server when oldPort is 0).
func gapAcross(acks []Ack, start time.Time, oldPort int) (time.Duration, bool) {
	var before time.Time
	for _, a := range acks {
		if !a.At.After(start) || (oldPort != 0 && a.Port == oldPort) {
			before = a.At
			continue
		}
		if before.IsZero() {
			return 0, false
		}
		return a.At.Sub(before), true
	}
	return 0, false
}
