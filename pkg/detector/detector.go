package detector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/pgctl"
)

// Target is a node to probe.
type Target struct {
	Key      string // cluster/shard/node
	Primary  bool   // the shard's declared primary
	Host     string
	Port     int
	User     string
	Password string
}

// Result is the outcome of one probe.
type Result struct {
	Key     string            `json:"key"`
	At      time.Time         `json:"at"`
	OK      bool              `json:"ok"`
	Refused bool              `json:"refused,omitempty"` // connection refused: the server is definitely not there
	Err     string            `json:"error,omitempty"`
	Sample  *collector.Sample `json:"sample,omitempty"`
}

// Detector probes nodes. It is safe for concurrent use on distinct keys.
type Detector struct {
	timeout time.Duration
	now     func() time.Time
	app     string // application_name
	bufs    collector.Buffers
	mu      sync.Mutex
	conns   map[string]*collector.Conn   // kept between probes, by node key
	busy    map[*collector.Conn]struct{} // in use by a probe (Interrupt)
	// block, when set, makes probes of the keys it returns true for fail
	// as if the network were cut (tests of partial reachability).
	block func(key string) bool
}

// SetBlock makes probes of the keys block returns true for fail as if the
// network were cut (tests of partial reachability); nil lifts it. It is
// safe while probes run.
func (d *Detector) SetBlock(block func(key string) bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.block = block
}

func (d *Detector) blocked(key string) bool {
	d.mu.Lock()
	block := d.block
	d.mu.Unlock()
	return block != nil && block(key)
}

// New returns a detector whose probes time out after timeout, with
// application_name "clustermgr <replica>" (pg_stat_activity shows which
// manager replica each connection is; "clustermgr" when replica is "").
func New(timeout time.Duration, now func() time.Time, replica string) *Detector {
	app := "clustermgr"
	if replica != "" {
		app += " " + replica
	}
	return &Detector{timeout: timeout, now: now, app: app, conns: map[string]*collector.Conn{},
		busy: map[*collector.Conn]struct{}{}}
}

// Probe reads a sample of t, retrying once on a fresh connection.
func (d *Detector) Probe(ctx context.Context, t Target) Result {
	res := Result{Key: t.Key, At: d.now()}
	if d.blocked(t.Key) {
		res.Err = "probe blocked"
		return res
	}
	sample, pooled, err := d.try(ctx, t, false)
	if err != nil && pooled && ctx.Err() == nil && !collector.Timeout(err) {
		// A kept connection broken by a server restart says nothing of
		// the server now: ask again on a fresh one. A fresh connection
		// that failed, or a kept one that timed out (the server is
		// hung), is the answer; a kept connection that was only stuck is
		// replaced at the next probe.
		sample, _, err = d.try(ctx, t, true)
	}
	if err != nil {
		res.Err = err.Error()
		res.Refused = errors.Is(err, syscall.ECONNREFUSED)
		return res
	}
	res.OK, res.Sample = true, sample
	return res
}

// try reads a sample through the kept connection of t (or a fresh one
// when there is none or fresh is set); pooled says whether it used a kept
// connection. The probe has d.timeout, connection and all. Over a kept
// connection it takes no context of its own: ctx is checked before the
// probe is sent, and a probe sent ends at its answer, its deadline or
// Interrupt. (A context and a watch on it per probe allocated as much as
// the probe itself, and a fleet's leader makes 10,000 a second.)
func (d *Detector) try(ctx context.Context, t Target, fresh bool) (s *collector.Sample, pooled bool, err error) {
	deadline := time.Now().Add(d.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn := d.take(t.Key)
	if fresh && conn != nil {
		d.drop(conn)
		conn = nil
	}
	pooled = conn != nil
	if conn == nil {
		cfg, err := d.config(t)
		if err != nil {
			return nil, false, err
		}
		dctx, cancel := context.WithDeadline(ctx, deadline)
		conn, err = collector.Dial(dctx, cfg, &d.bufs, pgctl.MaxMessageBytes)
		cancel()
		if err != nil {
			return nil, false, fmt.Errorf("connect to %s:%d: %w", t.Host, t.Port, err)
		}
		d.use(conn)
	}
	s, err = conn.Collect(ctx, deadline, d.now())
	if err != nil {
		d.drop(conn)
		return nil, pooled, fmt.Errorf("probe %s:%d: %w", t.Host, t.Port, err)
	}
	d.put(t.Key, conn)
	if s.NeedsReplayTimeline() {
		rctx, cancel := context.WithDeadline(ctx, deadline)
		d.readReplayTimeline(rctx, t, s)
		cancel()
	}
	return s, pooled, nil
}

func (d *Detector) config(t Target) (*pgconn.Config, error) {
	cfg, err := pgctl.NodeConfig(pgctl.Node{Host: t.Host, Port: t.Port, User: t.User, Password: t.Password,
		Database: "postgres", App: d.app, Timeout: d.timeout})
	if err != nil {
		return nil, err
	}
	cfg.DialFunc = (&net.Dialer{Timeout: d.timeout, KeepAlive: -1}).DialContext
	return cfg, nil
}

// readReplayTimeline asks a standby that streams from nowhere which
// timeline it replays, over a short-lived replication connection: its
// checkpoint timeline lags behind a promotion until the next restartpoint.
// When the question cannot be asked (no replication access), the sample
// keeps the checkpoint timeline and says where it came from.
func (d *Detector) readReplayTimeline(ctx context.Context, t Target, s *collector.Sample) {
	cfg, err := d.config(t)
	if err != nil {
		return
	}
	cfg.RuntimeParams["replication"] = "true"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		s.TimelineError = fmt.Sprintf("replication connection: %v", err)
		return
	}
	defer conn.Close(context.Background())
	tl, _, err := collector.IdentifySystem(ctx, conn)
	if err != nil {
		s.TimelineError = err.Error()
		return
	}
	s.Timeline, s.TimelineFrom = tl, collector.TimelineFromReplay
}

// take returns the kept connection of key, if there is one, in use.
func (d *Detector) take(key string) *collector.Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.conns[key]
	delete(d.conns, key)
	if c != nil {
		d.busy[c] = struct{}{}
	}
	return c
}

// use counts a new connection in use.
func (d *Detector) use(c *collector.Conn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.busy[c] = struct{}{}
}

// drop closes a connection in use.
func (d *Detector) drop(c *collector.Conn) {
	d.mu.Lock()
	delete(d.busy, c)
	d.mu.Unlock()
	c.Close()
}

// put keeps a connection in use for key's next probe (an interrupted
// one is closed).
func (d *Detector) put(key string, c *collector.Conn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.busy, c)
	if c.Interrupted() {
		c.Close()
		return
	}
	if old := d.conns[key]; old != nil {
		old.Close()
	}
	d.conns[key] = c
}

// Forget closes the connection of a node no longer probed.
func (d *Detector) Forget(key string) {
	d.mu.Lock()
	c := d.conns[key]
	delete(d.conns, key)
	d.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// Interrupt ends at once the probes waiting for an answer. Call it after
// cancelling the probes' context: a probe not yet sent then sees it
// cancelled, and one sent is interrupted, where it would otherwise wait
// for its deadline (the probe timeout, up to a minute).
func (d *Detector) Interrupt() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c := range d.busy {
		c.Interrupt()
	}
}

// Close closes every connection.
func (d *Detector) Close() {
	d.mu.Lock()
	conns := d.conns
	d.conns = map[string]*collector.Conn{}
	d.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}
