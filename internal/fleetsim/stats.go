package fleetsim

import (
	"sync/atomic"
	"time"
)

// probeBuckets is how many 1 ms buckets ProbeStats keeps; longer
// periods count in the last one.
const probeBuckets = 10_000

// ProbeStats is a histogram, in 1 ms buckets up to 10 s, of the time
// between two probes of a node over the same connection: the probe
// period each manager replica keeps for each node.
type ProbeStats struct {
	buckets [probeBuckets]atomic.Uint64
}

// Observe counts one period.
func (p *ProbeStats) Observe(d time.Duration) {
	ms := min(max(d.Milliseconds(), 0), probeBuckets-1)
	p.buckets[ms].Add(1)
}

// Reset forgets every period counted.
func (p *ProbeStats) Reset() {
	for i := range p.buckets {
		p.buckets[i].Store(0)
	}
}

// Count is how many periods were counted.
func (p *ProbeStats) Count() uint64 {
	var n uint64
	for i := range p.buckets {
		n += p.buckets[i].Load()
	}
	return n
}

// Quantile returns the period below which q (0..1] of the counted ones
// fall, to the millisecond (0 when none was counted).
func (p *ProbeStats) Quantile(q float64) time.Duration {
	var counts [probeBuckets]uint64
	var total uint64
	for i := range p.buckets {
		counts[i] = p.buckets[i].Load()
		total += counts[i]
	}
	if total == 0 {
		return 0
	}
	rank := uint64(q * float64(total))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			return time.Duration(i+1) * time.Millisecond
		}
	}
	return probeBuckets * time.Millisecond
}

// Buckets returns the non-empty buckets: milliseconds → count.
func (p *ProbeStats) Buckets() map[int]uint64 {
	out := map[int]uint64{}
	for i := range p.buckets {
		if c := p.buckets[i].Load(); c > 0 {
			out[i] = c
		}
	}
	return out
}

// Add counts the periods of buckets (as Buckets returns them).
func (p *ProbeStats) Add(buckets map[int]uint64) {
	for ms, c := range buckets {
		p.buckets[min(max(ms, 0), probeBuckets-1)].Add(c)
	}
}
