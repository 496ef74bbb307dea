package fleetsim

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clustermgr/clustermgr/pkg/collector"
)

// Node is one simulated PostgreSQL server of a shard: a primary whose
// WAL position advances, or a standby streaming from one.
type Node struct {
	Name string
	Host string
	Port int

	mu         sync.Mutex
	primary    bool
	timeline   uint32
	lsn        uint64 // current (primary) or received and replayed (standby)
	upstream   *Node  // the primary a standby streams from
	standbys   []*Node
	syncNames  string
	history    string // its timeline's history file (a promoted node)
	down       atomic.Bool
	promotedAt time.Time // when pg_promote made it the primary
	// resolve finds the node a primary_conninfo points at (nil: none).
	resolve func(host string, port int) *Node
}

// Down marks the node's server gone (its Server refuses too): its
// standbys' WAL receivers stop streaming.
func (n *Node) Down() { n.down.Store(true) }

// promote makes a standby the primary of a new timeline, as pg_promote
// does: the history file records where it left the old one. It reports
// false when the node is a primary already.
func (n *Node) promote() bool {
	n.mu.Lock()
	if n.primary {
		n.mu.Unlock()
		return false
	}
	n.history += fmt.Sprintf("%d\t%s\tno recovery target specified\n", n.timeline, lsnText(n.lsn))
	old := n.upstream
	n.primary, n.timeline, n.upstream = true, n.timeline+1, nil
	n.promotedAt = time.Now()
	n.mu.Unlock()
	if old != nil {
		old.detach(n)
	}
	return true
}

// detach forgets standby s.
func (n *Node) detach(s *Node) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, x := range n.standbys {
		if x == s {
			n.standbys = append(n.standbys[:i], n.standbys[i+1:]...)
			return
		}
	}
}

// repoint makes a standby stream from to (from nothing when to is nil),
// as a reload of a new primary_conninfo does; a standby that streams from
// a primary catches up with it at once, on its timeline.
func (n *Node) repoint(to *Node) {
	n.mu.Lock()
	old := n.upstream
	n.upstream = to
	n.mu.Unlock()
	if old == to {
		return
	}
	if old != nil {
		old.detach(n)
	}
	if to == nil {
		return
	}
	to.mu.Lock()
	to.standbys = append(to.standbys, n)
	lsn, tl := to.lsn, to.timeline
	to.mu.Unlock()
	n.mu.Lock()
	if lsn > n.lsn {
		n.lsn = lsn
	}
	n.timeline = tl
	n.mu.Unlock()
}

// Primary reports whether the node is a primary now.
func (n *Node) Primary() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.primary
}

// PromotedAt is when pg_promote made the node the primary (zero when it
// never did).
func (n *Node) PromotedAt() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.promotedAt
}

// Sessions returns the handlers of the node's sessions: each answers as
// Handler does and, when stats is set, counts the time between two probes
// on its connection in stats(its application_name).
func (n *Node) Sessions(now func() time.Time, stats func(app string) *ProbeStats) func(map[string]string) Handler {
	h := n.Handler(now)
	if stats == nil {
		return func(map[string]string) Handler { return h }
	}
	probe := collector.ProbeQuery()
	return func(startup map[string]string) Handler {
		st := stats(startup["application_name"])
		var last time.Time // a session runs on one goroutine
		return func(query string, params []string) (Result, error) {
			if query == probe && params != nil {
				t := time.Now()
				if !last.IsZero() {
					st.Observe(t.Sub(last))
				}
				last = t
			}
			return h(query, params)
		}
	}
}

// Upstream is the node a standby streams from (nil for a primary or a
// standby pointed at nothing).
func (n *Node) Upstream() *Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.upstream
}

// NewPrimary returns a primary at lsn on timeline 1.
func NewPrimary(name, host string, port int, lsn uint64) *Node {
	return &Node{Name: name, Host: host, Port: port, primary: true, timeline: 1, lsn: lsn}
}

// NewStandby returns a standby of p, caught up with it.
func NewStandby(name, host string, port int, p *Node) *Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &Node{Name: name, Host: host, Port: port, timeline: p.timeline, lsn: p.lsn, upstream: p}
	p.standbys = append(p.standbys, s)
	return s
}

// Advance moves a primary's WAL forward by n bytes and its standbys with
// it.
func (n *Node) Advance(bytes uint64) {
	n.mu.Lock()
	n.lsn += bytes
	lsn, standbys := n.lsn, append([]*Node(nil), n.standbys...)
	n.mu.Unlock()
	for _, s := range standbys {
		s.mu.Lock()
		s.lsn = lsn
		s.mu.Unlock()
	}
}

func lsnText(l uint64) string { return fmt.Sprintf("%X/%X", l>>32, l&0xffffffff) }

// walFileName is PostgreSQL's name of the 16 MB segment holding lsn.
func walFileName(tl uint32, lsn uint64) string {
	return fmt.Sprintf("%08X%08X%08X", tl, lsn>>32, (lsn&0xffffffff)>>24)
}

// Handler answers the manager's probe (collector.ProbeQuery) as this
// node.
func (n *Node) Handler(now func() time.Time) Handler {
	probe := collector.ProbeQuery()
	return func(query string, _ []string) (Result, error) {
		switch {
		case query == "SELECT pg_promote(false)":
			if !n.promote() {
				return Result{}, &Error{Code: "55000", Message: "recovery is not in progress"}
			}
			return Result{Cols: []Col{{"pg_promote", OIDBool}}, Rows: [][]any{{true}}}, nil
		case strings.HasPrefix(query, alterSystemSet):
			return n.alterSystem(strings.TrimPrefix(query, alterSystemSet))
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		switch query {
		case probe:
			return n.probe(now()), nil
		case "SELECT pg_is_in_recovery()":
			return Result{Cols: []Col{{"pg_is_in_recovery", OIDBool}}, Rows: [][]any{{!n.primary}}}, nil
		case "SELECT current_setting('synchronous_standby_names')":
			return Result{Cols: []Col{{"current_setting", OIDText}}, Rows: [][]any{{n.syncNames}}}, nil
		case "SELECT pg_reload_conf()":
			return Result{Cols: []Col{{"pg_reload_conf", OIDBool}}, Rows: [][]any{{true}}}, nil
		case "IDENTIFY_SYSTEM":
			// On a replication connection: the timeline a standby
			// replays and the WAL it has flushed.
			return Result{Cols: []Col{{"systemid", OIDText}, {"timeline", OIDInt4}, {"xlogpos", OIDText}, {"dbname", OIDText}},
				Rows: [][]any{{"7300000000000000001", int64(n.timeline), lsnText(n.lsn), nil}}}, nil
		}
		return Result{}, &Error{Code: "42601", Message: "the simulator does not answer: " + query}
	}
}

// probeCols are the columns of the manager's probe (collector.ProbeQuery).
var probeCols = []Col{{"pg_is_in_recovery", OIDBool}, {"current", OIDText}, {"walfile", OIDText}, {"receive", OIDText}, {"replay", OIDText},
	{"timeline_id", OIDInt4}, {"current_setting", OIDText}, {"count", OIDInt8}, {"current_setting", OIDInt4},
	{"receiving", OIDBool}, {"status", OIDText}, {"coalesce", OIDText}, {"coalesce", OIDInt4}, {"coalesce", OIDTimestamptz}, {"coalesce", OIDInt4},
	{"replication", OIDText}, {"pending", OIDTextArray}, {"slots", OIDTextArray},
	{"archiving", OIDBool}, {"archived_count", OIDInt8}, {"failed_count", OIDInt8}, {"coalesce", OIDText}, {"coalesce", OIDTimestamptz}, {"coalesce", OIDTimestamptz},
	{"case", OIDText}}

// probe is the node's answer to the manager's probe, with n.mu held: a
// primary with its streaming standbys, or a standby streaming from its
// primary while that is up; archiving on (as provisioned nodes run) and
// working; a promoted primary's own timeline history.
func (n *Node) probe(now time.Time) Result {
	epoch := time.Unix(0, 0).UTC()
	row := []any{!n.primary, "", "", "", "", int64(n.timeline), "", int64(1), int64(100),
		false, nil, "", int64(0), epoch, int64(0),
		"[]", []string{}, []string{},
		true, int64(n.lsn >> 24), int64(0), "", epoch, now,
		nil}
	if n.primary {
		row[1], row[2], row[6] = lsnText(n.lsn), walFileName(n.timeline, n.lsn), n.syncNames
		var reps []string
		for _, s := range n.standbys {
			if !s.down.Load() {
				reps = append(reps, fmt.Sprintf(`{"application_name":%q,"state":"streaming","sync_state":"async","flush_lsn":%q,"replay_lsn":%q,"replay_lag":0}`, s.Name, lsnText(n.lsn), lsnText(n.lsn)))
			}
		}
		if len(reps) > 0 {
			row[15] = "[" + strings.Join(reps, ", ") + "]"
		}
		if n.history != "" {
			row[24] = n.history
		}
	} else {
		row[3], row[4] = lsnText(n.lsn), lsnText(n.lsn)
		if u := n.upstream; u != nil && !u.down.Load() {
			row[9], row[10], row[11], row[12], row[13], row[14] = true, "streaming", u.Host, int64(u.Port), now, int64(n.timeline)
		}
	}
	return Result{Cols: probeCols, Rows: [][]any{row}}
}

const alterSystemSet = "ALTER SYSTEM SET "

// alterSystem takes "name = 'value'" of an ALTER SYSTEM SET. A new
// primary_conninfo repoints a standby at once (the reload that follows
// is taken as done); synchronous_standby_names is kept; other settings
// are accepted and forgotten.
func (n *Node) alterSystem(assign string) (Result, error) {
	name, lit, ok := strings.Cut(assign, " = ")
	if !ok {
		return Result{}, &Error{Code: "42601", Message: "the simulator does not parse: ALTER SYSTEM SET " + assign}
	}
	value, err := unquoteLiteral(lit)
	if err != nil {
		return Result{}, &Error{Code: "42601", Message: err.Error()}
	}
	switch name {
	case "primary_conninfo":
		host, port := conninfoAddr(value)
		var to *Node
		if n.resolve != nil && host != "" {
			to = n.resolve(host, port)
		}
		n.repoint(to)
	case "synchronous_standby_names":
		n.mu.Lock()
		n.syncNames = value
		n.mu.Unlock()
	}
	return Result{Tag: "ALTER SYSTEM"}, nil
}

// unquoteLiteral reads an SQL string literal: in single quotes, a quote
// inside doubled.
func unquoteLiteral(lit string) (string, error) {
	lit = strings.TrimSpace(lit)
	if strings.HasPrefix(lit, "E'") {
		return "", fmt.Errorf("the simulator does not read escape strings: %s", lit)
	}
	if len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
		return "", fmt.Errorf("not a string literal: %s", lit)
	}
	return strings.ReplaceAll(lit[1:len(lit)-1], "''", "'"), nil
}

// conninfoAddr reads host and port of a key=value connection string
// (values possibly quoted).
func conninfoAddr(s string) (host string, port int) {
	port = 5432
	for len(s) > 0 {
		s = strings.TrimLeft(s, " ")
		key, rest, ok := strings.Cut(s, "=")
		if !ok {
			return host, port
		}
		var val string
		if strings.HasPrefix(rest, "'") {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '\''; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			val, s = b.String(), rest[min(i+1, len(rest)):]
		} else {
			val, s, _ = strings.Cut(rest, " ")
		}
		switch strings.TrimSpace(key) {
		case "host":
			host = val
		case "port":
			if p, err := strconv.Atoi(val); err == nil {
				port = p
			}
		}
	}
	return host, port
}

// ListenPrimary serves a primary named name, made at a free loopback
// port, with wrap around its handler (nil: none). Close the server after
// use.
func ListenPrimary(name string, wrap func(Handler) Handler) (*Node, *Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	a := ln.Addr().(*net.TCPAddr)
	n := NewPrimary(name, a.IP.String(), a.Port, 1<<24)
	h := n.Handler(time.Now)
	if wrap != nil {
		h = wrap(h)
	}
	return n, Serve(ln, h), nil
}
