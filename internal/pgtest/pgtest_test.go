package pgtest

import (
	"fmt"
	"net"
	"testing"
	"time"
)

func TestHarness_PrimaryAndStandbysReplicate(t *testing.T) {
	e := NewEnv(t)
	p := e.StartPrimary("pg1")
	s1 := e.StartStandby("pg2", p)
	s2 := e.StartStandby("pg3", p)
	p.Exec("CREATE TABLE t (id bigint primary key)")
	p.Exec("INSERT INTO t VALUES (1), (2)")
	for _, s := range []*Server{s1, s2} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, err := s.QueryInt("SELECT count(*) FROM t")
			if err == nil && n == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d rows, %v", s.Name, n, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if rec, err := s.InRecovery(); err != nil || !rec {
			t.Fatalf("%s in recovery: %v %v", s.Name, rec, err)
		}
	}
	n, err := p.QueryInt("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
	if err != nil || n != 2 {
		t.Fatalf("streaming standbys %d %v", n, err)
	}
	p.Freeze()
	if _, err := p.QueryInt("SELECT 1"); err == nil {
		t.Fatal("frozen server answered")
	}
	p.Thaw()
	if _, err := p.QueryInt("SELECT 1"); err != nil {
		t.Fatalf("thawed server: %v", err)
	}
	p.KillPostmaster()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := p.QueryInt("SELECT 1"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("killed server still answers")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFreePorts: the ports of one call are distinct (a group's peers
// given the same address fail to bootstrap: "found duplicate address in
// configuration"), and free: each can be bound at once.
func TestFreePorts(t *testing.T) {
	for round := 0; round < 20; round++ {
		ports := FreePorts(t, 12)
		seen := map[int]bool{}
		for _, p := range ports {
			if seen[p] {
				t.Fatalf("port %d handed out twice in %v", p, ports)
			}
			seen[p] = true
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				t.Fatalf("port %d is not free: %v", p, err)
			}
			_ = ln.Close()
		}
	}
}

// TestFreePorts_NeverTheSameTwice: ports handed out one by one (each
// released before the next call) are all distinct, and below the kernel's
// ephemeral range.
func TestFreePorts_NeverTheSameTwice(t *testing.T) {
	seen := map[int]bool{}
	lo := ephemeralLow()
	for range 2000 {
		p := FreePort(t)
		if seen[p] || p >= lo || p < 10000 {
			t.Fatalf("port %d (seen before: %v; ephemeral range from %d)", p, seen[p], lo)
		}
		seen[p] = true
	}
}
