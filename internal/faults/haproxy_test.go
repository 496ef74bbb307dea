package faults

import (
	"sort"
	"strings"
	"testing"
	"time"
)

// haproxyRun is one primary SIGKILL under HAProxy: the write gaps of a
// client through HAProxy's write port and of one with a libpq multi-host
// URI, in the same run.
type haproxyRun struct {
	viaHAProxy, direct time.Duration
}

// runHAProxyFailover starts a cluster with HAProxy configured by
// clustermgr haproxy-config in front of it, writes through the write
// port and through a multi-host URI, reads through the read port, polls
// every agent's /primary, SIGKILLs the primary and checks what clients
// saw: writes resume through HAProxy on the new primary, no acknowledged
// row is lost but the old primary's last unreplicated ones (the shard is
// asynchronous), no write reaches a standby, reads reach a primary only in
// the check interval after the promotion, and no two agents answer
// /primary with 200 at once.
func runHAProxyFailover(t testing.TB, bin string, interval time.Duration) haproxyRun {
	c := NewCluster(t, bin, Config{})
	defer c.Close()
	direct := c.StartWriter()
	hx := c.StartHAProxy(interval)
	defer hx.Stop() // each iteration of the benchmark stops its own
	via := c.StartWriterAt(1<<40, hx.WriteDSN())
	reader := c.StartReader(hx.ReadDSN())
	checks := c.StartPrimaryChecks()
	if !via.WaitAcks(200, 30*time.Second) || !direct.WaitAcks(200, 30*time.Second) {
		t.Fatalf("no writes through haproxy (%d) or directly (%d)\n%s", via.Count(), direct.Count(), hx.Log())
	}
	if !waitFor(30*time.Second, func() bool { return len(reader.Reads()) >= 20 }) {
		t.Fatalf("no reads through haproxy's read port\n%s", hx.Log())
	}
	old := c.Node(c.Primary())
	killed := time.Now()
	c.CrashPostgres(old)
	var gapVia, gapDirect time.Duration
	if !waitFor(60*time.Second, func() bool {
		var ok1, ok2 bool
		gapVia, ok1 = gapAcross(via.Acks(), killed, old.Port)
		gapDirect, ok2 = gapAcross(direct.Acks(), killed, old.Port)
		return ok1 && ok2
	}) {
		t.Fatalf("no write on a new primary within 60 s: through haproxy %d acks, directly %d\n%s", via.Count(), direct.Count(), hx.Log())
	}
	// The first write the new primary acknowledged through HAProxy.
	var promotedAt time.Time
	var newPort int
	for _, a := range via.Acks() {
		if a.At.After(killed) && a.Port != old.Port {
			promotedAt, newPort = a.At, a.Port
			break
		}
	}
	if err := c.WaitHealed(90 * time.Second); err != nil {
		t.Fatalf("after the failover: %v", err)
	}
	// Reads go on a little while the old primary rejoins as a standby.
	if !via.WaitAcks(100, 30*time.Second) || !waitFor(30*time.Second, func() bool { return reader.Reads()[len(reader.Reads())-1].At.After(time.Now().Add(-time.Second)) }) {
		t.Fatal("writes or reads through haproxy stopped after the failover")
	}
	direct.Stop()
	via.Stop()
	reader.Stop()
	checks.Stop()

	present, err := c.Present()
	if err != nil {
		t.Fatal(err)
	}
	// The shard replicates asynchronously: the old primary's last
	// commits may never have reached a standby (the fault suite reports
	// those in async mode and fails only in sync mode). Those include
	// commits acknowledged a little after the kill began: under load its
	// signals reach the backends tens of milliseconds later. A row
	// acknowledged by any other server, or by the old primary once a new
	// one took writes, must be there.
	firstNew := promotedAt
	for _, a := range direct.Acks() {
		if a.At.After(killed) && a.Port != old.Port {
			if a.At.Before(firstNew) {
				firstNew = a.At
			}
			break
		}
	}
	var asyncLoss int
	for name, w := range map[string]*Writer{"through haproxy": via, "directly": direct} {
		for _, a := range w.Acks() {
			switch {
			case present[a.ID]:
			case a.Port == old.Port && a.At.Before(firstNew):
				asyncLoss++
			default:
				t.Errorf("row %d acknowledged %s by port %d at %v (the kill at %v, the new primary's first write at %v) is missing", a.ID, name, a.Port, a.At, killed, firstNew)
			}
		}
	}
	if n := via.ReadOnly(); n > 0 {
		t.Errorf("haproxy's write port sent %d inserts to a standby", n)
	}
	for _, a := range via.Acks() {
		if a.At.After(promotedAt) && a.Port != newPort {
			t.Errorf("a write acknowledged by port %d after the new primary (%d) took writes", a.Port, newPort)
			break
		}
	}
	// A read reaches a primary only from the promotion until HAProxy's
	// next check of that server (and the check's own time).
	window := promotedAt.Add(2*interval + time.Second)
	var early, late int
	for _, r := range reader.Reads() {
		if r.InRecovery {
			continue
		}
		switch {
		case r.At.Before(killed):
			early++
		case r.At.After(window):
			late++
		}
	}
	if early > 0 || late > 0 {
		t.Errorf("reads through the read port reached a primary: %d before the failure, %d after the check interval past the promotion", early, late)
	}
	rounds, two, which := checks.Result()
	if two > 0 {
		t.Errorf("%d of %d rounds found two agents answering /primary with 200: %s", two, len(rounds), strings.Join(which, ", "))
	}
	// The poller watched the whole change of primary: rounds before the
	// kill, between the kill and the promotion, and after it.
	var before, during, after bool
	for _, r := range rounds {
		before = before || r.Before(killed)
		during = during || r.After(killed) && r.Before(promotedAt)
		after = after || r.After(promotedAt)
	}
	if !before || !during || !after {
		t.Errorf("the /primary poller missed part of the failover: rounds before %v, during %v, after %v", before, during, after)
	}
	t.Logf("primary SIGKILL: write gap through haproxy %v, with a multi-host URI %v; %d reads, %d writes through haproxy; %d rounds of /primary checks; %d rows the old primary acknowledged last and never replicated (asynchronous)",
		gapVia.Round(time.Millisecond), gapDirect.Round(time.Millisecond), len(reader.Reads()), via.Count(), len(rounds), asyncLoss)
	return haproxyRun{viaHAProxy: gapVia, direct: gapDirect}
}

// TestHAProxy_WritesFollowAFailover runs Debian's haproxy with the
// configuration clustermgr haproxy-config prints, in front of a real
// 3-node shard run by manager and agent processes, through a primary
// SIGKILL.
func TestHAProxy_WritesFollowAFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts manager, agent, PostgreSQL and haproxy processes")
	}
	bin := buildBinary(t, t.TempDir())
	runHAProxyFailover(t, bin, time.Second)
}

// BenchmarkHAProxyWriteGap measures the write gap of a primary SIGKILL
// through HAProxy (the generated configuration, checks every second)
// beside the gap of a multi-host URI client in the same run; each
// iteration builds a fresh cluster. Reported: the medians of both and of
// their difference.
func BenchmarkHAProxyWriteGap(b *testing.B) {
	bin := buildBinary(b, b.TempDir())
	var via, direct, extra []time.Duration
	for i := 0; i < b.N; i++ {
		r := runHAProxyFailover(b, bin, time.Second)
		via, direct, extra = append(via, r.viaHAProxy), append(direct, r.direct), append(extra, r.viaHAProxy-r.direct)
	}
	median := func(d []time.Duration) float64 {
		s := append([]time.Duration(nil), d...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return float64(s[len(s)/2].Milliseconds())
	}
	b.ReportMetric(median(via), "haproxy-median-ms")
	b.ReportMetric(median(direct), "multihost-median-ms")
	b.ReportMetric(median(extra), "extra-median-ms")
}

// TestHAProxy_RoutesWithoutManagers: with every manager down, the agents
// keep answering: the primary, whose standbys still take its WAL once
// its lease has run out, keeps taking writes through HAProxy's write
// port, and the read port keeps reaching the standbys.
func TestHAProxy_RoutesWithoutManagers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts manager, agent, PostgreSQL and haproxy processes")
	}
	bin := buildBinary(t, t.TempDir())
	c := NewCluster(t, bin, Config{})
	hx := c.StartHAProxy(time.Second)
	via := c.StartWriterAt(1<<40, hx.WriteDSN())
	reader := c.StartReader(hx.ReadDSN())
	if !via.WaitAcks(100, 30*time.Second) {
		t.Fatalf("no writes through haproxy\n%s", hx.Log())
	}
	primary := c.Node(c.Primary())
	for _, m := range c.Managers {
		m.Kill()
	}
	down := time.Now()
	// Well past the lease (1.5 s) and the agent's checks after it.
	if !waitFor(30*time.Second, func() bool {
		acks := via.Acks()
		return len(acks) > 0 && acks[len(acks)-1].At.After(down.Add(5*time.Second))
	}) {
		t.Fatalf("writes through haproxy stopped without managers: %d acks, the last at %v after they died\n%s",
			via.Count(), via.Acks()[len(via.Acks())-1].At.Sub(down), hx.Log())
	}
	for _, a := range via.Acks() {
		if a.At.After(down) && a.Port != primary.Port {
			t.Fatalf("a write went to port %d, not the primary's %d", a.Port, primary.Port)
		}
	}
	if gap, at := WriteGap(via.Acks(), down, time.Now()); gap > 0 {
		t.Logf("longest pause between writes through haproxy with the managers down: %v (at %v after they died)", gap.Round(time.Millisecond), at.Sub(down).Round(time.Millisecond))
	}
	if !waitFor(30*time.Second, func() bool {
		reads := reader.Reads()
		return len(reads) > 0 && reads[len(reads)-1].At.After(down.Add(5*time.Second))
	}) {
		t.Fatalf("reads through haproxy stopped without managers\n%s", hx.Log())
	}
	for _, r := range reader.Reads() {
		if r.At.After(down) && !r.InRecovery {
			t.Fatalf("a read through the read port reached the primary (port %d) with the managers down", r.Port)
		}
	}
}
