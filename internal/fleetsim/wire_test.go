package fleetsim

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// row is what the test server answers for "SELECT row".
var at = time.Date(2026, 12, 3, 4, 5, 6, 789000000, time.UTC)

func testHandler(q string, params []string) (Result, error) {
	switch q {
	case "SELECT row":
		return Result{Cols: []Col{{"b", OIDBool}, {"i", OIDInt4}, {"l", OIDInt8}, {"t", OIDText}, {"f", OIDFloat8}, {"at", OIDTimestamptz}, {"n", OIDText}},
			Rows: [][]any{{true, int64(7), int64(1) << 40, "0/3000060", 1.5, at, nil}}}, nil
	case "SELECT names":
		return Result{Cols: []Col{{"name", OIDText}}, Rows: [][]any{{"a"}, {"b"}}}, nil
	case "SELECT $1::text":
		v := "?"
		if len(params) == 1 {
			v = params[0]
		}
		return Result{Cols: []Col{{"v", OIDText}}, Rows: [][]any{{v}}}, nil
	case "SELECT pg_promote(false)":
		return Result{}, &Error{Code: "55000", Message: "recovery is not in progress"}
	}
	return Result{}, &Error{Code: "42601", Message: "the simulator does not know " + q}
}

func start(t *testing.T) *pgx.Conn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := Serve(ln, testHandler)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, "postgres://postgres@"+ln.Addr().String()+"/postgres?sslmode=prefer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

type rowOut struct {
	B  bool
	I  int32
	L  int64
	T  string
	F  float64
	At time.Time
	N  *string
}

// TestWire_PgxQueries: pgx connects, prepares, describes, binds and
// reads every type the simulator encodes, in text and binary, alone and
// in a batch, with parameters; errors come back with their SQLSTATE and
// the connection goes on.
func TestWire_PgxQueries(t *testing.T) {
	conn := start(t)
	ctx := context.Background()
	var got rowOut
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeSimpleProtocol} {
		got = rowOut{}
		if err := conn.QueryRow(ctx, "SELECT row", mode).Scan(&got.B, &got.I, &got.L, &got.T, &got.F, &got.At, &got.N); err != nil {
			t.Fatalf("mode %v: %v", mode, err)
		}
		want := rowOut{B: true, I: 7, L: 1 << 40, T: "0/3000060", F: 1.5, At: at}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("mode %v (-want +got):\n%s", mode, diff)
		}
	}
	var v string
	if err := conn.QueryRow(ctx, "SELECT $1::text", "hello").Scan(&v); err != nil || v != "hello" {
		t.Fatalf("parameter: %q %v", v, err)
	}
	b := &pgx.Batch{}
	b.Queue("SELECT names")
	b.Queue("SELECT row")
	br := conn.SendBatch(ctx, b)
	rows, err := br.Query()
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !cmp.Equal(names, []string{"a", "b"}) {
		t.Fatalf("batch names %v %v", names, err)
	}
	if err := br.QueryRow().Scan(&got.B, &got.I, &got.L, &got.T, &got.F, &got.At, &got.N); err != nil || got.L != 1<<40 {
		t.Fatalf("batch row %+v %v", got, err)
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "SELECT pg_promote(false)")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "55000" || pe.Message != "recovery is not in progress" {
		t.Fatalf("error %v", err)
	}
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("after an error: %v", err)
	}
}

// TestWire_Faults: a refusing server drops its connections and takes no
// new one; a hung one accepts and never answers (the client's deadline
// ends the wait); a slow one answers late; healed, it answers again.
func TestWire_Faults(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := Serve(ln, testHandler)
	defer srv.Close()
	dsn := "postgres://postgres@" + ln.Addr().String() + "/postgres?sslmode=disable"
	try := func(d time.Duration) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		start := time.Now()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return time.Since(start), err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, "SELECT names")
		return time.Since(start), err
	}
	if _, err := try(5 * time.Second); err != nil {
		t.Fatalf("healthy: %v", err)
	}
	srv.SetFault(Fault{Refuse: true})
	if _, err := try(5 * time.Second); err == nil {
		t.Fatal("a refusing server answered")
	}
	srv.SetFault(Fault{Hang: true})
	if took, err := try(300 * time.Millisecond); err == nil || took < 250*time.Millisecond {
		t.Fatalf("a hung server: %v after %v", err, took)
	}
	srv.SetFault(Fault{Delay: 50 * time.Millisecond})
	if took, err := try(5 * time.Second); err != nil || took < 100*time.Millisecond {
		t.Fatalf("a slow server: %v after %v", err, took)
	}
	srv.SetFault(Fault{})
	if _, err := try(5 * time.Second); err != nil {
		t.Fatalf("healed: %v", err)
	}
}
