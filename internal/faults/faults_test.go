//go:build faults

package faults

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
)

// standby returns a standby to kill: the synchronous one when the shard
// records one, else the first standby.
func standby(c *Cluster) *Node {
	sh := c.Shard()
	if len(sh.SyncSet) > 0 {
		return c.Node(sh.SyncSet[0])
	}
	for _, n := range c.Nodes {
		if n.Name != sh.Primary {
			return n
		}
	}
	return nil
}

// splitBrainWrites fails when the old primary (oldPort) acknowledged a
// write of the pinned writer at or after the first write the cluster's
// writer had acknowledged on another node since start: two primaries took
// writes. It logs the margin either way. Unless failoverOptional, a
// partition with no write on another node fails too.
func splitBrainWrites(t testing.TB, acks, pinned []Ack, oldPort int, start time.Time, failoverOptional bool) error {
	var first time.Time
	for _, a := range acks {
		if a.At.After(start) && a.Port != oldPort {
			first = a.At
			break
		}
	}
	if first.IsZero() && failoverOptional {
		n := 0
		for _, a := range pinned {
			if a.Port == oldPort && a.At.After(start) {
				n++
			}
		}
		t.Logf("no failover: the old primary acknowledged %d writes of its side's clients after the cut", n)
		return nil
	}
	if first.IsZero() {
		return errorf("no write on another node during the partition")
	}
	var last time.Time
	n := 0
	for _, a := range pinned {
		if a.Port != oldPort {
			continue
		}
		last = a.At
		if !a.At.Before(first) {
			n++
		}
	}
	t.Logf("cut at %s; the old primary's last write %s; the new primary's first %s (margin %v)",
		start.Format("15:04:05.000"), last.Format("15:04:05.000"), first.Format("15:04:05.000"), first.Sub(last).Round(time.Millisecond))
	if n > 0 {
		return errorf("%d writes acknowledged by the cut-off old primary after the new primary's first (last %v after it)", n, last.Sub(first).Round(time.Millisecond))
	}
	return nil
}

func primary(t testing.TB, c *Cluster) *Node {
	p := c.Primary()
	if p == "" {
		t.Fatal("no declared primary")
	}
	return c.Node(p)
}

var scenarios = []Scenario{
	{"primary SIGKILL", func(t testing.TB, c *Cluster) error {
		c.CrashPostgres(primary(t, c))
		return nil
	}},
	{"primary host loss (postmaster + agent SIGKILL, back after 10 s)", func(t testing.TB, c *Cluster) error {
		p := primary(t, c)
		p.Agent.Kill()
		c.CrashPostgres(p)
		time.Sleep(10 * time.Second)
		c.Start(p.Agent)
		return nil
	}},
	{"primary freeze 15 s then thaw", func(t testing.TB, c *Cluster) error {
		p := primary(t, c)
		p.Agent.Signal(syscall.SIGSTOP)
		c.FreezePostgres(p, syscall.SIGSTOP)
		time.Sleep(15 * time.Second)
		c.FreezePostgres(p, syscall.SIGCONT)
		p.Agent.Signal(syscall.SIGCONT)
		return nil
	}},
	{"primary pause 1 s: no failover", func(t testing.TB, c *Cluster) error {
		p := primary(t, c)
		before := c.Shard().Epoch
		p.Agent.Signal(syscall.SIGSTOP)
		c.FreezePostgres(p, syscall.SIGSTOP)
		time.Sleep(time.Second)
		c.FreezePostgres(p, syscall.SIGCONT)
		p.Agent.Signal(syscall.SIGCONT)
		time.Sleep(5 * time.Second)
		if sh := c.Shard(); sh.Epoch != before || sh.Primary != p.Name {
			return errorf("a 1 s pause caused a failover: %s at epoch %d, was %s at %d", sh.Primary, sh.Epoch, p.Name, before)
		}
		return nil
	}},
	{"primary cut off from managers and standbys 15 s, not from its clients", func(t testing.TB, c *Cluster) error {
		p := primary(t, c)
		pinned := c.StartPinnedWriter(p, 1<<40)
		defer pinned.Stop()
		if !pinned.WaitAcks(20, 10*time.Second) {
			return errorf("the pinned writer wrote nothing to %s", p.Name)
		}
		start := time.Now()
		heal, err := c.Partition(p)
		if err != nil {
			return err
		}
		time.Sleep(15 * time.Second)
		heal()
		pinned.Stop()
		return splitBrainWrites(t, c.Writer().Acks(), pinned.Acks(), p.Port, start, false)
	}},
	{"primary and a standby cut off from managers and the other standby 15 s", func(t testing.TB, c *Cluster) error {
		// The old primary keeps a standby, the managers see the other:
		// at most one side may take writes.
		p, s := primary(t, c), standby(c)
		pinned := c.StartPinnedWriter(p, 1<<40)
		defer pinned.Stop()
		if !pinned.WaitAcks(20, 10*time.Second) {
			return errorf("the pinned writer wrote nothing to %s", p.Name)
		}
		start := time.Now()
		heal, err := c.PartitionWith(p, s)
		if err != nil {
			return err
		}
		time.Sleep(15 * time.Second)
		heal()
		pinned.Stop()
		var ops api.OperationList
		c.Do("GET", "/v1/operations", nil, &ops)
		for _, op := range ops.Operations {
			if op.Kind == "failover" && op.Error != "" {
				t.Logf("failover %s refused: %s", op.ID, op.Error)
			}
		}
		return splitBrainWrites(t, c.Writer().Acks(), pinned.Acks(), p.Port, start, true)
	}},
	{"manager leader SIGKILL", func(t testing.TB, c *Cluster) error {
		l := c.Leader()
		l.Kill()
		time.Sleep(5 * time.Second)
		c.Start(l)
		return nil
	}},
	{"manager leader + primary SIGKILL", func(t testing.TB, c *Cluster) error {
		l, p := c.Leader(), primary(t, c)
		l.Kill()
		c.CrashPostgres(p)
		time.Sleep(5 * time.Second)
		c.Start(l)
		return nil
	}},
	{"10 switchovers in a row", func(t testing.TB, c *Cluster) error {
		for i := 0; i < 10; i++ {
			if _, err := c.Switchover(); err != nil {
				return err
			}
			if err := c.WaitHealed(HealLimit); err != nil {
				return errorf("after switchover %d: %v", i+1, err)
			}
		}
		return nil
	}},
	{"primary SIGKILL 1 s after a switchover, 5 times", func(t testing.TB, c *Cluster) error {
		for i := 0; i < 5; i++ {
			if _, err := c.Switchover(); err != nil {
				return err
			}
			time.Sleep(time.Second)
			c.CrashPostgres(primary(t, c))
			if err := c.WaitHealed(HealLimit); err != nil {
				return errorf("after kill %d: %v", i+1, err)
			}
		}
		return nil
	}},
	{"all managers down 20 s", func(t testing.TB, c *Cluster) error {
		for _, m := range c.Managers {
			m.Kill()
		}
		time.Sleep(20 * time.Second)
		for _, m := range c.Managers {
			c.Start(m)
		}
		return nil
	}},
	{"synchronous standby SIGKILL", func(t testing.TB, c *Cluster) error {
		c.CrashPostgres(standby(c))
		return nil
	}},
	{"standby SIGKILL, primary SIGKILL 5 s later", func(t testing.TB, c *Cluster) error {
		c.CrashPostgres(standby(c))
		time.Sleep(5 * time.Second)
		c.CrashPostgres(primary(t, c))
		return nil
	}},
}

// TestFaults runs every scenario in asynchronous and synchronous mode on
// a fresh cluster each and prints the results table (FAULTS_OUT names a
// file to write it to as well). Select with -run 'TestFaults/on/primary'.
func TestFaults(t *testing.T) {
	bin := buildBinary(t, t.TempDir())
	table := &Table{}
	for _, mode := range []string{"off", "on"} {
		t.Run(mode, func(t *testing.T) {
			for _, s := range scenarios {
				t.Run(strings.ReplaceAll(s.Name, " ", "_"), func(t *testing.T) {
					r := RunScenario(t, bin, mode, s)
					table.Add(r)
					t.Logf("%s/%s: healed in %v, write gap %v (from %s), %d acked, %d lost, %d stale, %d two-writable polls",
						mode, s.Name, r.Healed.Round(time.Millisecond), r.Gap.Round(time.Millisecond), r.GapAt.Format("15:04:05.000"), r.Acked, r.Lost, r.Stale, r.TwoWritablePolls)
					if why := r.Failed(); why != "" {
						t.Error(why)
					}
				})
			}
		})
	}
	var b strings.Builder
	table.Write(&b)
	t.Log("\n" + b.String())
	if out := os.Getenv("FAULTS_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}
