package faults

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Ack is one acknowledged insert: its id, when the answer came, and the
// server and timeline that committed it.
type Ack struct {
	ID       int64
	At       time.Time
	Port     int
	Timeline int64
}

// Writer inserts increasing unique ids, one per transaction, through a
// libpq multi-host URI with target_session_attrs=read-write, and records
// every acknowledged one. A failed or timed-out insert is not
// acknowledged; its id is never reused.
type Writer struct {
	cfg    *pgx.ConnConfig
	idBase int64

	mu    sync.Mutex
	acks  []Ack
	fails int
	// readOnly counts inserts a server refused as read-only: a writer
	// sent to a standby.
	readOnly int

	cancel context.CancelFunc
	done   chan struct{}
}

// clientAddr is the loopback address that the clients on a partitioned
// node's side connect from (the split-brain poller and pinned writers): a
// partition cuts a node off from 127.0.0.1 (managers, agents, other nodes,
// the cluster's writer) but not from them.
const clientAddr = "127.0.0.2"

// pgPassword is the cluster's password: a provisioned server takes TCP
// connections with scram-sha-256 only.
const pgPassword = "faults-suite-password"

// clientConfig parses a connection string for a client connecting from
// local (the kernel's choice when empty).
func clientConfig(dsn, local string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	if local != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, KeepAlive: 5 * time.Second}
		cfg.DialFunc = d.DialContext
	}
	return cfg, nil
}

// StartWriter starts writing to the cluster's nodes; Stop ends it. The
// first writer started is the cluster's own (Cluster.Writer).
func (c *Cluster) StartWriter() *Writer {
	c.t.Helper()
	w := c.startWriter(0, "", c.Nodes...)
	if c.writer == nil {
		c.writer = w
	}
	return w
}

// StartPinnedWriter starts a writer that knows only node n (a client
// that stays with it whatever the managers do) and connects from
// clientAddr, with ids from idBase so that its rows never collide with
// the cluster writer's.
func (c *Cluster) StartPinnedWriter(n *Node, idBase int64) *Writer {
	c.t.Helper()
	return c.startWriter(idBase, clientAddr, n)
}

// Writer returns the cluster's own writer (nil before StartWriter).
func (c *Cluster) Writer() *Writer { return c.writer }

func (c *Cluster) startWriter(idBase int64, local string, nodes ...*Node) *Writer {
	var hosts []string
	for _, n := range nodes {
		hosts = append(hosts, fmt.Sprintf("127.0.0.1:%d", n.Port))
	}
	return c.startWriterAt(idBase, local, "postgres://postgres:"+pgPassword+"@"+strings.Join(hosts, ",")+"/postgres?target_session_attrs=read-write&connect_timeout=1")
}

// StartWriterAt starts a writer through dsn (a load balancer's port),
// with ids from idBase.
func (c *Cluster) StartWriterAt(idBase int64, dsn string) *Writer {
	c.t.Helper()
	return c.startWriterAt(idBase, "", dsn)
}

func (c *Cluster) startWriterAt(idBase int64, local, dsn string) *Writer {
	cfg, err := clientConfig(dsn, local)
	must(c.t, err, "writer config")
	w := &Writer{cfg: cfg, idBase: idBase, done: make(chan struct{})}
	conn, err := pgx.ConnectConfig(context.Background(), cfg.Copy())
	must(c.t, err, "writer connect")
	_, err = conn.Exec(context.Background(), "CREATE TABLE IF NOT EXISTS t (id bigint PRIMARY KEY)")
	_ = conn.Close(context.Background())
	must(c.t, err, "create table")
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.run(ctx)
	c.t.Cleanup(w.Stop)
	return w
}

const insert = `INSERT INTO t (id) VALUES ($1) RETURNING inet_server_port(), ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint`

func (w *Writer) run(ctx context.Context) {
	defer close(w.done)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	}()
	for id := w.idBase + 1; ctx.Err() == nil; id++ {
		if conn == nil {
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			c, err := pgx.ConnectConfig(cctx, w.cfg.Copy())
			cancel()
			if err != nil {
				w.fail()
				sleep(ctx, 20*time.Millisecond)
				continue
			}
			conn = c
		}
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var port int
		var tl int64
		err := conn.QueryRow(qctx, insert, id).Scan(&port, &tl)
		cancel()
		if err != nil {
			w.fail()
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "25006" {
				w.mu.Lock()
				w.readOnly++
				w.mu.Unlock()
			}
			_ = conn.Close(context.Background())
			conn = nil
			continue
		}
		w.mu.Lock()
		w.acks = append(w.acks, Ack{ID: id, At: time.Now(), Port: port, Timeline: tl})
		w.mu.Unlock()
		sleep(ctx, 5*time.Millisecond)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (w *Writer) fail() {
	w.mu.Lock()
	w.fails++
	w.mu.Unlock()
}

// Stop ends the writer and waits for it.
func (w *Writer) Stop() {
	w.cancel()
	<-w.done
}

// Acks returns the acknowledged inserts in order.
func (w *Writer) Acks() []Ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Ack(nil), w.acks...)
}

// ReadOnly returns how many inserts reached a server in recovery.
func (w *Writer) ReadOnly() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.readOnly
}

// Count returns how many inserts were acknowledged so far.
func (w *Writer) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks)
}

// WaitAcks waits until n more inserts than now are acknowledged.
func (w *Writer) WaitAcks(n int, d time.Duration) bool {
	want := w.Count() + n
	return waitFor(d, func() bool { return w.Count() >= want })
}

// Poller asks every node pg_is_in_recovery() every 100 ms and counts the
// polls that found more than one writable node.
type Poller struct {
	mu        sync.Mutex
	polls     int
	twoWrites int
	cancel    context.CancelFunc
	done      chan struct{}
}

// StartPoller starts the split-brain poller; Stop ends it.
func (c *Cluster) StartPoller() *Poller {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Poller{cancel: cancel, done: make(chan struct{})}
	ports := make([]int, len(c.Nodes))
	for i, n := range c.Nodes {
		ports[i] = n.Port
	}
	go p.run(ctx, ports)
	c.t.Cleanup(p.Stop)
	return p
}

func (p *Poller) run(ctx context.Context, ports []int) {
	defer close(p.done)
	conns := make([]*pgx.Conn, len(ports))
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.Close(context.Background())
			}
		}
	}()
	for ctx.Err() == nil {
		writable := 0
		for i, port := range ports {
			qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			if conns[i] == nil {
				if cfg, err := clientConfig("postgres://postgres:"+pgPassword+"@127.0.0.1:"+strconv.Itoa(port)+"/postgres?connect_timeout=1", clientAddr); err == nil {
					if c, err := pgx.ConnectConfig(qctx, cfg); err == nil {
						conns[i] = c
					}
				}
			}
			if conns[i] != nil {
				var rec bool
				if err := conns[i].QueryRow(qctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
					_ = conns[i].Close(context.Background())
					conns[i] = nil
				} else if !rec {
					writable++
				}
			}
			cancel()
		}
		p.mu.Lock()
		p.polls++
		if writable > 1 {
			p.twoWrites++
		}
		p.mu.Unlock()
		sleep(ctx, 100*time.Millisecond)
	}
}

// Stop ends the poller and waits for it.
func (p *Poller) Stop() {
	p.cancel()
	<-p.done
}

// TwoWritable returns how many polls found two writable nodes.
func (p *Poller) TwoWritable() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.twoWrites
}
