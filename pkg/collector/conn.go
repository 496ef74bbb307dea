package collector

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Conn is a connection kept between probes of one server. pgconn opens
// it (TLS, authentication, startup); from then on it is the socket alone:
// a probe borrows its buffers from a Buffers and gives them back. A
// fleet's probe connections are the bulk of a manager's memory otherwise
// (a driver connection keeps a read buffer, type maps and statement
// caches each), and the bulk of what its garbage collector scans.
//
// After an error, a Conn is to be closed. It is not for concurrent use.
type Conn struct {
	nc          net.Conn
	bufs        *Buffers
	maxBody     int
	prepared    bool        // the probe statement is prepared on the server
	interrupted atomic.Bool // Interrupt was called
}

// probeStatement names the prepared probe on the server.
const probeStatement = "clustermgr_probe"

// Buffers lends probes the buffers they read and write with, so that an
// idle connection holds none. It is safe for concurrent use.
type Buffers struct{ pool sync.Pool }

// probeBuf is one probe's scratch space.
type probeBuf struct {
	out        []byte
	in         []byte
	r, w       int // in[r:w] is read and not yet used
	oids       []uint32
	vals       [][]byte
	gotDataRow bool
}

// keptBuffer is the largest read buffer given back for reuse: a probe's
// answer is well under it, but a primary's timeline history can be 64
// KiB.
const keptBuffer = 16 << 10

func (b *Buffers) get() *probeBuf {
	if p, ok := b.pool.Get().(*probeBuf); ok {
		return p
	}
	return &probeBuf{in: make([]byte, 4096), oids: make([]uint32, 0, probeColumns), vals: make([][]byte, 0, probeColumns)}
}

func (b *Buffers) put(p *probeBuf) {
	if cap(p.in) > keptBuffer || cap(p.out) > keptBuffer {
		return
	}
	p.r, p.w, p.gotDataRow = 0, 0, false
	clear(p.vals[:cap(p.vals)]) // no slice of the last answer kept
	b.pool.Put(p)
}

// Dial connects with cfg and keeps the socket; maxBody bounds one message
// from the server (pgctl.MaxMessageBytes).
func Dial(ctx context.Context, cfg *pgconn.Config, bufs *Buffers, maxBody int) (*Conn, error) {
	pg, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pg.SyncConn(ctx); err != nil {
		_ = pg.Close(context.Background())
		return nil, err
	}
	hc, err := pg.Hijack()
	if err != nil {
		_ = pg.Close(context.Background())
		return nil, err
	}
	return &Conn{nc: hc.Conn, bufs: bufs, maxBody: maxBody}, nil
}

// Interrupt ends the probe running on c at once, or the next one before
// it is sent: the probe fails, as not a timeout. It is safe while a probe
// runs, from any goroutine; c is to be closed after.
func (c *Conn) Interrupt() {
	c.interrupted.Store(true)
	_ = c.nc.SetDeadline(time.Unix(1, 0))
}

// Interrupted reports whether Interrupt was called.
func (c *Conn) Interrupted() bool { return c.interrupted.Load() }

// Close ends the session and closes the socket.
func (c *Conn) Close() {
	_ = c.nc.SetDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = c.nc.Write([]byte{'X', 0, 0, 0, 4}) // Terminate
	_ = c.nc.Close()
}

// Collect reads a sample in one round trip: the probe statement, prepared
// on the connection's first probe, bound and run with binary results. It
// ends at the answer, at deadline or at an Interrupt. ctx is checked
// before the probe is sent, not watched while it waits: a watch costs
// allocations a fleet's probes cannot afford (the owner of the
// connections interrupts them when it stops).
func (c *Conn) Collect(ctx context.Context, deadline, now time.Time) (*Sample, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	if err := c.nc.SetDeadline(deadline); err != nil {
		return nil, err
	}
	// After the deadline is set: an Interrupt from now on moves it.
	if c.interrupted.Load() {
		return nil, errInterrupted()
	}
	b := c.bufs.get()
	defer c.bufs.put(b)
	s, err := c.collect(b, now)
	switch {
	case err == nil:
		return s, nil
	case c.interrupted.Load():
		return nil, errInterrupted()
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, &TimeoutError{err: context.DeadlineExceeded}
	}
	return nil, err
}

func errInterrupted() error { return errors.New("read status: the probe was interrupted") }

// TimeoutError is a probe that ran out of time: the server did not answer
// by the deadline. The connection may be sound; the server is the
// question.
type TimeoutError struct{ err error }

func (e *TimeoutError) Error() string { return "timeout: " + e.err.Error() }
func (e *TimeoutError) Unwrap() error { return e.err }

// Timeout reports whether err is a probe that ran out of time, on a kept
// connection or a new one.
func Timeout(err error) bool {
	var te *TimeoutError
	return errors.As(err, &te) || pgconn.Timeout(err)
}

func (c *Conn) collect(b *probeBuf, now time.Time) (*Sample, error) {
	var err error
	out := b.out[:0]
	if !c.prepared {
		out, err = (&pgproto3.Parse{Name: probeStatement, Query: probeQuery}).Encode(out)
		if err != nil {
			return nil, err
		}
	}
	out = appendBind(out)
	out = append(out, 'D', 0, 0, 0, 6, 'P', 0)        // Describe the unnamed portal
	out = append(out, 'E', 0, 0, 0, 9, 0, 0, 0, 0, 0) // Execute it, all rows
	out = append(out, 'S', 0, 0, 0, 4)                // Sync
	b.out = out
	if _, err := c.nc.Write(out); err != nil {
		return nil, err
	}

	var s *Sample
	var failed error // the server's error; the answer is read to its end
	for {
		typ, body, err := c.message(b)
		if err != nil {
			if failed != nil {
				return nil, failed
			}
			return nil, err
		}
		switch typ {
		case '1': // ParseComplete
			c.prepared = true
		case '2', 'C', 'N', 'S', 'A': // BindComplete, CommandComplete; a notice, a setting, a notification
		case 'T':
			if err := readRowDescription(b, body); err != nil {
				return nil, err
			}
		case 'D':
			if b.gotDataRow {
				return nil, errors.New("read status: more than one row")
			}
			b.gotDataRow = true
			if err := readDataRow(b, body); err != nil {
				return nil, err
			}
			r := row{oids: b.oids, vals: b.vals}
			if s, err = r.sample(now); err != nil && failed == nil {
				failed = err
			}
		case 'E':
			var e pgproto3.ErrorResponse
			if err := e.Decode(body); err != nil {
				return nil, fmt.Errorf("read status: %w", err)
			}
			if failed == nil {
				failed = fmt.Errorf("read status: %w", pgconn.ErrorResponseToPgError(&e))
			}
		case 'Z': // ReadyForQuery: the answer is whole
			if failed != nil {
				return nil, failed
			}
			if s == nil {
				return nil, errors.New("read status: no row")
			}
			return s, nil
		default:
			return nil, fmt.Errorf("read status: unexpected message %q", typ)
		}
	}
}

// appendBind appends a Bind of the probe statement to the unnamed portal,
// with no parameters and every result column in binary.
func appendBind(out []byte) []byte {
	start := len(out)
	out = append(out, 'B', 0, 0, 0, 0)
	out = append(out, 0) // the unnamed portal
	out = append(out, probeStatement...)
	out = append(out, 0)
	out = append(out, 0, 0) // no parameter formats
	out = append(out, 0, 0) // no parameters
	out = append(out, 0, 1, 0, 1)
	binary.BigEndian.PutUint32(out[start+1:], uint32(len(out)-start-1))
	return out
}

// message reads the next message: its type and body, valid until the
// next call.
func (c *Conn) message(b *probeBuf) (byte, []byte, error) {
	hdr, err := c.next(b, 5)
	if err != nil {
		return 0, nil, err
	}
	typ := hdr[0]
	n := int(int32(binary.BigEndian.Uint32(hdr[1:]))) - 4
	if n < 0 || n > c.maxBody {
		return 0, nil, fmt.Errorf("read status: invalid body length %d of a %q message", n, typ)
	}
	body, err := c.next(b, n)
	return typ, body, err
}

// next returns the next n bytes read, reading more when the buffer has
// fewer.
func (c *Conn) next(b *probeBuf, n int) ([]byte, error) {
	if b.w-b.r < n {
		if len(b.in)-b.r < n {
			// Move what is left to the start, into a larger buffer if need be.
			in := b.in
			if len(in) < n {
				in = make([]byte, max(n, 2*len(in)))
			}
			b.w = copy(in, b.in[b.r:b.w])
			b.r, b.in = 0, in
		}
		m, err := io.ReadAtLeast(c.nc, b.in[b.w:], n-(b.w-b.r))
		b.w += m
		if err != nil {
			return nil, err
		}
	}
	p := b.in[b.r : b.r+n : b.r+n]
	b.r += n
	return p, nil
}

// readRowDescription keeps the columns' types.
func readRowDescription(b *probeBuf, body []byte) error {
	n, body, err := fields(body, "row description")
	if err != nil {
		return err
	}
	b.oids = b.oids[:0]
	for range n {
		// The name, its end, then table OID (4), column (2), type OID
		// (4), size (2), modifier (4), format (2).
		end := bytes.IndexByte(body, 0)
		if end < 0 || len(body) < end+1+18 {
			return malformed("row description")
		}
		f := body[end+1:]
		b.oids = append(b.oids, binary.BigEndian.Uint32(f[6:]))
		body = f[18:]
	}
	return nil
}

// readDataRow slices the row's values out of body (nil: NULL).
func readDataRow(b *probeBuf, body []byte) error {
	n, body, err := fields(body, "data row")
	if err != nil {
		return err
	}
	b.vals = b.vals[:0]
	for range n {
		if len(body) < 4 {
			return malformed("data row")
		}
		l := int(int32(binary.BigEndian.Uint32(body)))
		body = body[4:]
		if l < 0 {
			b.vals = append(b.vals, nil)
			continue
		}
		if l > len(body) {
			return malformed("data row")
		}
		b.vals = append(b.vals, body[:l:l])
		body = body[l:]
	}
	return nil
}

// fields reads the field count a row description or data row starts with.
func fields(body []byte, what string) (int, []byte, error) {
	if len(body) < 2 {
		return 0, nil, malformed(what)
	}
	return int(binary.BigEndian.Uint16(body)), body[2:], nil
}

func malformed(what string) error { return fmt.Errorf("read status: a malformed %s", what) }
