package ha

import (
	"fmt"
	"testing"
	"time"
)

func TestSlotPacer(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	p := newSlotPacer(t0, 500*time.Millisecond, 10) // a slot every 50 ms
	for _, tc := range []struct {
		now  int // ms
		due  string
		wait time.Duration
	}{
		{0, "[0]", 50 * time.Millisecond},
		{10, "[]", 40 * time.Millisecond},
		{50, "[1]", 50 * time.Millisecond},
		{230, "[2 3 4]", 20 * time.Millisecond},                // a late wake catches up
		{260, "[5]", 40 * time.Millisecond},                    // and keeps the schedule
		{2000, "[1 2 3 4 5 6 7 8 9 0]", 50 * time.Millisecond}, // an interval late: each slot once
		{2050, "[1]", 50 * time.Millisecond},
	} {
		got := fmt.Sprint(p.due(at(tc.now)))
		if got != tc.due {
			t.Fatalf("at %d ms: due %s, want %s", tc.now, got, tc.due)
		}
		if w := p.wait(at(tc.now)); w != tc.wait {
			t.Fatalf("at %d ms: wait %v, want %v", tc.now, w, tc.wait)
		}
	}
}
