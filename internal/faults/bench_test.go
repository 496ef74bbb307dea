//go:build faults

package faults

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clustermgr/clustermgr/pkg/api"
)

func reportGaps(b *testing.B, gaps, writable []time.Duration) {
	if len(gaps) == 0 {
		return
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	b.ReportMetric(float64(gaps[len(gaps)/2].Milliseconds()), "median-ms")
	b.ReportMetric(float64(gaps[0].Milliseconds()), "min-ms")
	b.ReportMetric(float64(gaps[len(gaps)-1].Milliseconds()), "max-ms")
	if len(writable) > 0 {
		sort.Slice(writable, func(i, j int) bool { return writable[i] < writable[j] })
		b.ReportMetric(float64(writable[len(writable)/2].Milliseconds()), "writable-median-ms")
	}
}

// writablePoller asks every node but the old primary, each over a
// connection of its own kept open, every 10 ms whether it accepts
// writes, and records when the first one does: when the new primary is
// writable for a client that tries the nodes directly rather than in a
// multi-host URI's order (whose connect timeout on a frozen first host
// delays the writer by a second per attempt).
type writablePoller struct {
	mu     sync.Mutex
	at     time.Time
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startWritablePoller(ports []int) *writablePoller {
	ctx, cancel := context.WithCancel(context.Background())
	p := &writablePoller{cancel: cancel}
	for _, port := range ports {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			var conn *pgx.Conn
			defer func() {
				if conn != nil {
					_ = conn.Close(context.Background())
				}
			}()
			for ctx.Err() == nil {
				if conn == nil {
					cctx, ccancel := context.WithTimeout(ctx, time.Second)
					c, err := pgx.Connect(cctx, "postgres://postgres:"+pgPassword+"@127.0.0.1:"+strconv.Itoa(port)+"/postgres?connect_timeout=1")
					ccancel()
					if err != nil {
						sleep(ctx, 10*time.Millisecond)
						continue
					}
					conn = c
				}
				var writable bool
				qctx, qcancel := context.WithTimeout(ctx, time.Second)
				err := conn.QueryRow(qctx, "SELECT NOT pg_is_in_recovery()").Scan(&writable)
				qcancel()
				if err != nil {
					_ = conn.Close(context.Background())
					conn = nil
					continue
				}
				if writable {
					p.mu.Lock()
					if p.at.IsZero() {
						p.at = time.Now()
					}
					p.mu.Unlock()
					return
				}
				sleep(ctx, 10*time.Millisecond)
			}
		}()
	}
	return p
}

// stop ends the poller and returns when a node first accepted writes.
func (p *writablePoller) stop() time.Time {
	p.cancel()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.at
}

// BenchmarkClientWriteGap measures outages as a client sees them: a
// writer through a libpq multi-host URI with
// target_session_attrs=read-write against a provisioned shard run by
// three manager processes with the default settings, one agent process
// per host. Each iteration builds a fresh cluster. The gap runs from the
// last write acknowledged before the fault to the first acknowledged by
// the new primary.
func BenchmarkClientWriteGap(b *testing.B) {
	bin := buildBinary(b, b.TempDir())
	faults := []struct {
		name string
		run  func(b *testing.B, c *Cluster) (newPrimary bool)
	}{
		{"primary-SIGKILL", func(b *testing.B, c *Cluster) bool {
			c.CrashPostgres(c.Node(c.Primary()))
			return true
		}},
		{"frozen-host", func(b *testing.B, c *Cluster) bool {
			p := c.Node(c.Primary())
			p.Agent.Signal(syscall.SIGSTOP)
			c.FreezePostgres(p, syscall.SIGSTOP)
			return true
		}},
		{"switchover", func(b *testing.B, c *Cluster) bool {
			start := time.Now()
			op, err := c.Switchover()
			if err != nil {
				b.Fatal(err)
			}
			// Where the time goes: each step's end, from the request.
			var line []string
			for _, st := range op.Steps {
				line = append(line, fmt.Sprintf("%s %dms", st.Name, st.At.Sub(start).Milliseconds()))
			}
			b.Logf("switchover steps: %s", strings.Join(line, ", "))
			return true
		}},
	}
	for _, f := range faults {
		b.Run(f.name, func(b *testing.B) {
			var gaps, writable []time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				c := NewCluster(b, bin, Config{})
				w := c.StartWriter()
				if !w.WaitAcks(200, 30*time.Second) {
					b.Fatal("no writes")
				}
				old := c.Node(c.Primary()).Port
				var others []int
				for _, n := range c.Nodes {
					if n.Port != old {
						others = append(others, n.Port)
					}
				}
				poller := startWritablePoller(others)
				b.StartTimer()
				start := time.Now()
				f.run(b, c)
				var gap time.Duration
				ok := waitFor(60*time.Second, func() bool {
					var found bool
					gap, found = gapAcross(w.Acks(), start, old)
					return found
				})
				b.StopTimer()
				at := poller.stop()
				if f.name != "switchover" {
					var ops api.OperationList
					c.Do("GET", "/v1/operations", nil, &ops)
					for _, op := range ops.Operations {
						if op.Kind == "failover" && op.CreatedAt.After(start) {
							var line []string
							for _, st := range op.Steps {
								line = append(line, fmt.Sprintf("%s %dms", st.Name, st.At.Sub(start).Milliseconds()))
							}
							b.Logf("%s %s %s, from the fault: created %dms, %s; %s", op.ID, op.State, op.Error, op.CreatedAt.Sub(start).Milliseconds(), strings.Join(line, ", "), op.Steps[0].Detail)
						}
					}
				}
				w.Stop()
				c.Close()
				if !ok {
					b.Fatalf("%s: no write on a new primary within 60 s", f.name)
				}
				gaps = append(gaps, gap)
				if !at.IsZero() {
					writable = append(writable, at.Sub(start))
					b.Logf("%s: client write gap %v; a node other than the old primary writable %v after the fault", f.name, gap.Round(time.Millisecond), at.Sub(start).Round(time.Millisecond))
				}
			}
			reportGaps(b, gaps, writable)
		})
	}
}

func TestGapAcross(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	acks := []Ack{{At: at(0), Port: 1}, {At: at(100), Port: 1}, {At: at(150), Port: 1}, {At: at(900), Port: 2}, {At: at(910), Port: 2}}
	for _, tc := range []struct {
		name    string
		start   int
		oldPort int
		want    time.Duration
		ok      bool
	}{
		{"the old primary commits after the request", 120, 1, 750 * time.Millisecond, true},
		{"any server", 120, 0, 50 * time.Millisecond, true},
		{"nothing acknowledged before", -10, 2, 0, false},
		{"no new server yet", 950, 2, 0, false},
	} {
		got, ok := gapAcross(acks, at(tc.start), tc.oldPort)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: gapAcross = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
