package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

// printTable writes the figures as a Markdown table: one column per fleet
// size, with the goal at 10,000 nodes.
func printTable(w io.Writer, base []trial, rs []*result) {
	bd, bp := median(decisions(base)), median(promotions(base))
	head := "| figure |"
	sep := "|---|"
	for _, r := range rs {
		head += fmt.Sprintf(" %d nodes |", r.nodes)
		sep += "---|"
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, head+" goal at 10,000 |")
	fmt.Fprintln(w, sep+"---|")
	row := func(name, goal string, f func(r *result) string) {
		var b strings.Builder
		b.WriteString("| " + name + " |")
		for _, r := range rs {
			b.WriteString(" " + f(r) + " |")
		}
		fmt.Fprintln(w, b.String()+" "+goal+" |")
	}
	row("agents", "", func(r *result) string { return r.agents })
	row("registration of the fleet (API)", "", func(r *result) string {
		return fmt.Sprintf("%s (each shard seen healthy %s; %d of %d at once)", ms(r.register), ms(r.healthy), r.healthyAtOnce, r.shards)
	})
	row("leader CPU", "≤ 1 core", func(r *result) string { return fmt.Sprintf("%.2f cores", r.cpu[r.leader]) })
	row("follower CPU", "", func(r *result) string {
		var f []string
		for i := range r.cpu {
			if i != r.leader {
				f = append(f, fmt.Sprintf("%.2f", r.cpu[i]))
			}
		}
		return strings.Join(f, ", ") + " cores"
	})
	row("simulator CPU (the fleet's hosts, on this machine too)", "", func(r *result) string { return fmt.Sprintf("%.2f cores", r.simCPU) })
	row("leader RSS (peak)", "≤ 1 GiB", func(r *result) string {
		return fmt.Sprintf("%s (%s)", mib(r.rss[r.leader]), mib(r.peak[r.leader]))
	})
	row("follower RSS", "", func(r *result) string {
		var f []string
		for i := range r.rss {
			if i != r.leader {
				f = append(f, mib(r.rss[i]))
			}
		}
		return strings.Join(f, ", ")
	})
	row("probe period p50 / p99 (the leader's, every node)", "p99 ≤ 1.2 s", func(r *result) string {
		return fmt.Sprintf("%s / %s", ms(r.probeP50), ms(r.probeP99))
	})
	row("probes the leader skipped (clustermgr_probes_skipped_total)", "", func(r *result) string { return r.skipped })
	row("failover decision, median (vs one shard)", "≤ 1.2×", func(r *result) string {
		d := median(decisions(r.failovers))
		return fmt.Sprintf("%s (%s)", ms(d), ratio(d, bd))
	})
	row("promotion, median (vs one shard)", "", func(r *result) string {
		d := median(promotions(r.failovers))
		return fmt.Sprintf("%s (%s)", ms(d), ratio(d, bp))
	})
	row("failover decision with 1% of nodes hung", "≤ 1.2×", func(r *result) string {
		d := median(decisions(r.hungFailovers))
		return fmt.Sprintf("%s (%s; %d hung)", ms(d), ratio(d, bd), r.hung)
	})
	row("promotion with 1% of nodes hung", "", func(r *result) string {
		d := median(promotions(r.hungFailovers))
		return fmt.Sprintf("%s (%s)", ms(d), ratio(d, bp))
	})
	row("Raft elections in the window", "", func(r *result) string { return fmt.Sprintf("%d", r.terms) })
	row("Raft log growth, steady", "≤ 100 KiB/min", func(r *result) string {
		return fmt.Sprintf("%.1f KiB/min (%.0f entries/min)", r.logBytes/1024, r.logEntries)
	})
	row("snapshot size / encode + write", "", func(r *result) string {
		if r.snapshot == nil {
			return "none taken"
		}
		return fmt.Sprintf("%.1f MiB / %.0f + %.0f ms", float64(r.snapshot.Bytes)/(1<<20), r.snapshot.EncodeMs, r.snapshot.PersistMs)
	})
	latency := func(lat []time.Duration, failed int) string {
		if len(lat) == 0 && failed == 0 {
			return "not measured (-api-load 0)"
		}
		return fmt.Sprintf("%s / %s (%d failed)", ms(quantile(lat, 0.5)), ms(quantile(lat, 0.99)), failed)
	}
	row("GET .../primary p50 / p99 at 1k rps", "p99 ≤ 5 ms", func(r *result) string { return latency(r.primaryLat, r.primaryFailed) })
	row("GET /v1/clusters/{c} p50 / p99 at 1k rps", "", func(r *result) string { return latency(r.clusterLat, r.clusterFailed) })
	row("load average at the end of the window", "", func(r *result) string { return r.load })
	fmt.Fprintf(w, "\nsingle-shard group: failover decision median %s, promotion %s (%d groups)\n", ms(bd), ms(bp), len(base))
}
