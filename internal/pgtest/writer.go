package pgtest

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Writer is a counted write loop: it inserts increasing ids into a table
// through whatever address Target returns, one row per transaction, and
// records which ids were acknowledged (committed and answered).
type Writer struct {
	// Target returns the DSN to write to now ("" to wait).
	Target func() string
	// Table is created by the caller: CREATE TABLE t (id bigint primary key).
	Table string

	mu    sync.Mutex
	acked []int64
	acks  []Ack
	fails int
}

// Ack is one acknowledged write.
type Ack struct {
	ID     int64
	At     time.Time
	Target string // the DSN it was written to
}

// Run writes until ctx is cancelled, pausing Interval between rows.
func (w *Writer) Run(ctx context.Context, interval time.Duration) {
	var conn *pgx.Conn
	var connDSN string
	defer func() {
		if conn != nil {
			_ = conn.Close(context.Background())
		}
	}()
	for id := int64(1); ctx.Err() == nil; {
		dsn := w.Target()
		if dsn != connDSN && conn != nil {
			_ = conn.Close(context.Background())
			conn = nil
		}
		if conn == nil && dsn != "" {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			c, err := pgx.Connect(cctx, dsn)
			cancel()
			if err == nil {
				conn, connDSN = c, dsn
			}
		}
		if conn != nil {
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := conn.Exec(qctx, "INSERT INTO "+pgx.Identifier{w.Table}.Sanitize()+" (id) VALUES ($1)", id)
			cancel()
			w.mu.Lock()
			if err == nil {
				w.acked = append(w.acked, id)
				w.acks = append(w.acks, Ack{ID: id, At: time.Now(), Target: connDSN})
			} else {
				w.fails++
			}
			w.mu.Unlock()
			if err != nil {
				_ = conn.Close(context.Background())
				conn = nil
			}
			id++
		}
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

// Acked returns the acknowledged ids.
func (w *Writer) Acked() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int64(nil), w.acked...)
}

// Acks returns the acknowledged writes in order, with when and where.
func (w *Writer) Acks() []Ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Ack(nil), w.acks...)
}

// Failures returns how many writes failed.
func (w *Writer) Failures() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fails
}
