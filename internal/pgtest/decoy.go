package pgtest

import (
	"net"
	"strconv"
	"sync/atomic"
	"testing"
)

// Decoy listens on a loopback port no connection should reach, and counts
// and closes the ones that do; it stops at the test's end. reached is how
// many came.
func Decoy(t testing.TB) (port int, reached func() int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ln.Addr().(*net.TCPAddr).Port, n.Load
}

// DecoyEnvironment points the libpq environment (PGHOST, PGPORT,
// PGDATABASE, PGSSLMODE) at a Decoy for the test, as an operator's shell
// might be: what the manager connects to must not follow it.
func DecoyEnvironment(t *testing.T) (reached func() int64) {
	t.Helper()
	port, reached := Decoy(t)
	t.Setenv("PGHOST", "127.0.0.1")
	t.Setenv("PGPORT", strconv.Itoa(port))
	t.Setenv("PGDATABASE", "elsewhere")
	t.Setenv("PGSSLMODE", "prefer")
	return reached
}
