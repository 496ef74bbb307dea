package ha

import "time"

// slotPacer spreads periodic work over an interval cut into n slots:
// slot number k (counted over all intervals) is due at start + k·interval/n,
// and runs slot k mod n. A wake that comes late runs every slot due
// since, so a loaded machine delays the work by its lateness only; a
// ticker would drop the missed ticks and stretch each interval by a slot
// per late wake. Slots more than a whole interval late run once.
type slotPacer struct {
	start time.Time
	step  time.Duration
	n     int64
	next  int64 // the number of the next slot to run
}

func newSlotPacer(start time.Time, interval time.Duration, n int) *slotPacer {
	return &slotPacer{start: start, step: max(interval/time.Duration(n), time.Millisecond), n: int64(n)}
}

// due returns the slots due at now that have not run, oldest first, and
// counts them as run.
func (p *slotPacer) due(now time.Time) []int {
	last := int64(now.Sub(p.start) / p.step)
	if last < p.next {
		return nil
	}
	if last-p.next >= p.n {
		p.next = last - p.n + 1
	}
	var out []int
	for ; p.next <= last; p.next++ {
		out = append(out, int(p.next%p.n))
	}
	return out
}

// wait is how long from now until the next slot is due.
func (p *slotPacer) wait(now time.Time) time.Duration {
	return max(p.start.Add(time.Duration(p.next)*p.step).Sub(now), 0)
}
