package collector_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/clustermgr/clustermgr/internal/fleetsim"
	"github.com/clustermgr/clustermgr/internal/pgtest"
	"github.com/clustermgr/clustermgr/internal/tlstest"
	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/pgctl"
)

func dial(t *testing.T, host string, port int, bufs *collector.Buffers, maxBody int) *collector.Conn {
	t.Helper()
	cfg, err := pgctl.NodeConfig(pgctl.Node{Host: host, Port: port, User: "postgres", Database: "postgres", App: "conn-test", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := collector.Dial(ctx, cfg, bufs, maxBody)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func collect(c *collector.Conn, timeout time.Duration) (*collector.Sample, error) {
	return c.Collect(context.Background(), time.Now().Add(timeout), time.Now())
}

// moving are the fields that change from one reading to the next.
var moving = cmp.Options{
	cmpopts.IgnoreFields(collector.Sample{}, "At", "CurrentLSN", "ReceiveLSN", "ReplayLSN"),
	cmpopts.IgnoreFields(collector.Receiver{}, "LastMsg"),
	cmpopts.IgnoreFields(collector.Replica{}, "FlushLSN", "ReplayLSN", "ReplayLag"),
}

// TestConn_ReadsWhatTheDriverReads: a kept connection's samples of a
// real primary and standby, over the prepared statement and binary
// values, equal the driver's (Collect), field by field.
func TestConn_ReadsWhatTheDriverReads(t *testing.T) {
	e := pgtest.NewEnv(t)
	p := e.StartPrimary("pg1")
	s := e.StartStandby("pg2", p)
	p.Exec("SELECT pg_create_physical_replication_slot('pg9')")
	p.Exec("ALTER SYSTEM SET max_connections = 41") // pending a restart
	p.Exec("ALTER SYSTEM SET max_wal_senders = 9")
	p.Exec("SELECT pg_reload_conf()")
	var bufs collector.Buffers
	for _, srv := range []*pgtest.Server{p, s} {
		c := dial(t, srv.Host, srv.Port, &bufs, pgctl.MaxMessageBytes)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		drv, err := srv.Connect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer drv.Close(context.Background())
		var got, want *collector.Sample
		for { // until the standby streams, as both see it
			if got, err = collect(c, 5*time.Second); err != nil {
				t.Fatalf("%s: %v", srv.Name, err)
			}
			if want, err = collector.Collect(ctx, drv, time.Now()); err != nil {
				t.Fatalf("%s: driver: %v", srv.Name, err)
			}
			streaming := func(s *collector.Sample) bool {
				if s.InRecovery {
					return s.Receiver != nil && s.Receiver.Status == "streaming"
				}
				return len(s.Replicas) == 1 && s.Replicas[0].State == "streaming"
			}
			pending := func(s *collector.Sample) bool { return s.InRecovery || len(s.PendingRestart) == 2 }
			if streaming(got) && streaming(want) && pending(got) && pending(want) {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s: not streaming: %+v", srv.Name, got)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if d := cmp.Diff(want, got, moving); d != "" {
			t.Errorf("%s: kept connection's sample (-driver +kept):\n%s", srv.Name, d)
		}
		if got.LSN() == 0 || (got.Receiver != nil && got.Receiver.LastMsg.IsZero()) || (!got.InRecovery && len(got.Slots) != 1) {
			t.Errorf("%s: sample %+v", srv.Name, got)
		}
	}
}

// TestConn_TLS: a server with TLS on is spoken to through it.
func TestConn_TLS(t *testing.T) {
	e := pgtest.NewEnv(t)
	p := e.StartPrimary("pg1")
	cert, key := tlstest.NewCA(t, "conn-test").Issue("pg1")
	for name, from := range map[string]string{"server.pem": cert, "server-key.pem": key} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(p.DataDir, name)
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := e.Runner.Chown(to); err != nil {
			t.Fatal(err)
		}
	}
	p.Exec("ALTER SYSTEM SET ssl_cert_file = 'server.pem'")
	p.Exec("ALTER SYSTEM SET ssl_key_file = 'server-key.pem'")
	p.Exec("ALTER SYSTEM SET ssl = on")
	p.Exec("SELECT pg_reload_conf()")
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := p.QueryInt("SELECT count(*) FROM pg_settings WHERE name = 'ssl' AND setting = 'on'")
		if err == nil && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssl is not on: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var bufs collector.Buffers
	c := dial(t, p.Host, p.Port, &bufs, pgctl.MaxMessageBytes)
	for range 2 {
		if _, err := collect(c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	n, err := p.QueryInt(`SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
		WHERE a.application_name = 'conn-test' AND s.ssl`)
	if err != nil || n != 1 {
		t.Fatalf("%d TLS connections from the probe (%v), want 1", n, err)
	}
}

// simNode serves a simulated primary whose probe answer edit changes.
func simNode(t *testing.T, edit func(fleetsim.Result) (fleetsim.Result, error)) (string, int) {
	t.Helper()
	n, srv, err := fleetsim.ListenPrimary("pg1", func(h fleetsim.Handler) fleetsim.Handler {
		return func(q string, params []string) (fleetsim.Result, error) {
			res, err := h(q, params)
			if err != nil || q != collector.ProbeQuery() {
				return res, err
			}
			return edit(res)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return n.Host, n.Port
}

// TestConn_BadAnswers: what a server answers wrong is an error that says
// what, and never a sample.
func TestConn_BadAnswers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(fleetsim.Result) (fleetsim.Result, error)
		maxBody int
		want    string
	}{
		{"server error", func(fleetsim.Result) (fleetsim.Result, error) {
			return fleetsim.Result{}, &fleetsim.Error{Code: "42501", Message: "permission denied for function pg_read_file"}
		}, 0, "permission denied for function pg_read_file (SQLSTATE 42501)"},
		{"a column of the wrong type", func(r fleetsim.Result) (fleetsim.Result, error) {
			r.Cols = append([]fleetsim.Col(nil), r.Cols...)
			r.Cols[0].OID = fleetsim.OIDText
			r.Rows = [][]any{append([]any{"t"}, r.Rows[0][1:]...)}
			return r, nil
		}, 0, "column 1: want a boolean, the server sent type 25"},
		{"a column too few", func(r fleetsim.Result) (fleetsim.Result, error) {
			r.Cols = r.Cols[:len(r.Cols)-1]
			r.Rows = [][]any{r.Rows[0][:len(r.Cols)]}
			return r, nil
		}, 0, "the row has 24 columns, not 25"},
		{"two rows", func(r fleetsim.Result) (fleetsim.Result, error) {
			r.Rows = append(r.Rows, r.Rows[0])
			return r, nil
		}, 0, "more than one row"},
		{"no row", func(r fleetsim.Result) (fleetsim.Result, error) {
			r.Rows = nil
			return r, nil
		}, 0, "no row"},
		{"NULL where none may be", func(r fleetsim.Result) (fleetsim.Result, error) {
			r.Rows = [][]any{append([]any{nil}, r.Rows[0][1:]...)}
			return r, nil
		}, 0, "column 1: want a boolean, the server sent NULL"},
		{"a message past the bound", func(r fleetsim.Result) (fleetsim.Result, error) {
			return r, nil
		}, 64, "invalid body length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, port := simNode(t, tc.edit)
			var bufs collector.Buffers
			maxBody := pgctl.MaxMessageBytes
			if tc.maxBody > 0 {
				maxBody = tc.maxBody
			}
			c := dial(t, host, port, &bufs, maxBody)
			s, err := collect(c, 5*time.Second)
			if err == nil || s != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("sample %+v, error %v; want an error with %q", s, err, tc.want)
			}
			if collector.Timeout(err) {
				t.Fatalf("%v counts as a timeout", err)
			}
		})
	}
}

// TestConn_ServerErrorIsPgError: the server's own error keeps its code.
func TestConn_ServerErrorIsPgError(t *testing.T) {
	host, port := simNode(t, func(fleetsim.Result) (fleetsim.Result, error) {
		return fleetsim.Result{}, &fleetsim.Error{Code: "42501", Message: "permission denied"}
	})
	var bufs collector.Buffers
	_, err := collect(dial(t, host, port, &bufs, pgctl.MaxMessageBytes), 5*time.Second)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Fatalf("error %v (%T) is not the server's", err, err)
	}
}

// TestConn_TimeoutAndCancel: a server that does not answer costs the
// probe its deadline, as a timeout; a probe whose context has ended is not
// sent, and an interrupted one ends at once; neither is a timeout.
func TestConn_TimeoutAndCancel(t *testing.T) {
	release := make(chan struct{})
	var asked atomic.Int64
	host, port := simNode(t, func(r fleetsim.Result) (fleetsim.Result, error) {
		asked.Add(1)
		<-release
		return r, nil
	})
	defer close(release) // before the server's Close, which waits for its sessions
	var bufs collector.Buffers

	c := dial(t, host, port, &bufs, pgctl.MaxMessageBytes)
	start := time.Now()
	_, err := collect(c, 200*time.Millisecond)
	if took := time.Since(start); err == nil || !collector.Timeout(err) || !strings.Contains(err.Error(), "timeout") ||
		took < 200*time.Millisecond || took > 5*time.Second {
		t.Fatalf("silent server: %v after %v", err, took)
	}

	c = dial(t, host, port, &bufs, pgctl.MaxMessageBytes)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := asked.Load()
	_, err = c.Collect(ctx, time.Now().Add(time.Minute), time.Now())
	if !errors.Is(err, context.Canceled) || collector.Timeout(err) || asked.Load() != before {
		t.Fatalf("cancelled probe: %v (the server was asked %d times)", err, asked.Load()-before)
	}

	// Interrupted while it waits, and before it is sent.
	c = dial(t, host, port, &bufs, pgctl.MaxMessageBytes)
	time.AfterFunc(100*time.Millisecond, c.Interrupt)
	start = time.Now()
	_, err = collect(c, time.Minute)
	if took := time.Since(start); err == nil || !strings.Contains(err.Error(), "interrupted") || collector.Timeout(err) || took > 30*time.Second {
		t.Fatalf("interrupted probe: %v after %v", err, took)
	}
	c = dial(t, host, port, &bufs, pgctl.MaxMessageBytes)
	c.Interrupt()
	before = asked.Load()
	if _, err = collect(c, time.Minute); err == nil || !strings.Contains(err.Error(), "interrupted") || asked.Load() != before {
		t.Fatalf("probe after an interrupt: %v (the server was asked %d times)", err, asked.Load()-before)
	}
}
