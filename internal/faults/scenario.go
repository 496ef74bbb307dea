package faults

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Result is what one fault did, as the client saw it.
type Result struct {
	Fault, Mode string
	// Healed is the time from the end of the fault until PostgreSQL
	// showed one writable primary with every other node streaming from
	// it; 0 when it did not within the limit.
	Healed time.Duration
	// Gap is the longest pause between acknowledged writes from the
	// fault to healing.
	Gap                time.Duration
	GapAt              time.Time // when the longest pause began
	Acked, Lost, Stale int
	TwoWritablePolls   int
	Err                string
}

// Scenario is one fault: Run injects it while the writer runs and returns
// when the fault has ended (what was stopped is running again).
type Scenario struct {
	Name string
	Run  func(t testing.TB, c *Cluster) error
}

// HealLimit is how long a cluster may take to heal alone after a fault.
const HealLimit = 60 * time.Second

// RunScenario starts a cluster in the given synchronous mode, runs the
// fault under the writer and the poller, waits for healing and checks
// the acknowledged rows.
func RunScenario(t testing.TB, bin string, mode string, s Scenario) Result {
	c := NewCluster(t, bin, Config{Synchronous: mode})
	w := c.StartWriter()
	p := c.StartPoller()
	res := Result{Fault: s.Name, Mode: mode}
	if !w.WaitAcks(200, 30*time.Second) {
		res.Err = "no writes before the fault"
		return res
	}
	start := time.Now()
	if err := s.Run(t, c); err != nil {
		res.Err = err.Error()
	}
	end := time.Now()
	if err := c.WaitHealed(HealLimit); err != nil {
		res.Err = strings.TrimPrefix(res.Err+"; ", "; ") + "not healed: " + err.Error()
	} else {
		res.Healed = time.Since(end)
	}
	if !w.WaitAcks(100, 30*time.Second) {
		res.Err = strings.TrimPrefix(res.Err+"; ", "; ") + "no writes after healing"
	}
	w.Stop()
	p.Stop()
	acks := w.Acks()
	res.Acked, res.Stale, res.TwoWritablePolls = len(acks), StaleWrites(acks), p.TwoWritable()
	res.Gap, res.GapAt = WriteGap(acks, start, time.Now())
	present, err := c.Present()
	if err != nil {
		res.Err = strings.TrimPrefix(res.Err+"; ", "; ") + "read rows: " + err.Error()
	} else {
		res.Lost = len(Lost(acks, present))
	}
	return res
}

// Failed says why a result fails the suite's bar: not healed, a stale
// write, or an acknowledged row lost in synchronous mode.
func (r Result) Failed() string {
	var why []string
	if r.Err != "" {
		why = append(why, r.Err)
	}
	if r.Stale > 0 {
		why = append(why, fmt.Sprintf("%d writes acknowledged by a deposed primary", r.Stale))
	}
	if r.Lost > 0 && r.Mode != "off" {
		why = append(why, fmt.Sprintf("%d acknowledged rows lost in synchronous mode", r.Lost))
	}
	return strings.Join(why, "; ")
}

// Table collects results and prints them as a Markdown table.
type Table struct {
	mu   sync.Mutex
	rows []Result
}

// Add records a result.
func (tb *Table) Add(r Result) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.rows = append(tb.rows, r)
}

// Write prints the table, one row per fault and mode.
func (tb *Table) Write(w io.Writer) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	rows := append([]Result(nil), tb.rows...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Mode < rows[j].Mode })
	fmt.Fprintln(w, "| fault | sync | healed alone | time to healthy | longest write gap | acked | lost | stale writes | two writable (polls) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		healed, took := "yes", r.Healed.Round(100*time.Millisecond).String()
		if r.Err != "" {
			healed, took = "no: "+strings.NewReplacer("\n", " ", "|", "/").Replace(r.Err), "-"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %d | %d | %d | %d |\n", r.Fault, r.Mode, healed, took,
			r.Gap.Round(10*time.Millisecond), r.Acked, r.Lost, r.Stale, r.TwoWritablePolls)
	}
}
