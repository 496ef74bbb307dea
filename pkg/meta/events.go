package meta

import "sort"

// eventSlack is how far past MaxEvents the history grows, at level 2,
// before compactEvents brings it back: compacting costs a pass over the
// history, once every eventSlack events.
const eventSlack = MaxEvents / 4

// addEvent appends an event and bounds the history: at level 1 to the
// newest MaxEvents, at level 2 by compactEvents.
func (s *State) addEvent(e Event) {
	e.ID = s.NextEventID
	s.NextEventID++
	e.At = e.At.UTC()
	if s.level() < 2 {
		s.Events = appendBounded(s.Events, e, MaxEvents)
		return
	}
	s.Events = append(s.Events, e)
	if len(s.Events) > MaxEvents+eventSlack {
		s.Events = compactEvents(s.Events, MaxEvents)
	}
}

// historyKey is the part of the history an event belongs to: its
// shard's, its cluster's (an event of no shard), or the group's.
func historyKey(e *Event) string { return e.Cluster + "/" + e.Shard }

// compactEvents keeps at most limit of events (oldest first) and shares
// them out fairly among their history keys: each key keeps its newest
// quota events, where quota is the largest share for which all fit. A
// key with fewer keeps all of its own, so a shard that fails over and
// over loses its oldest events, not the quiet shards' last ones. The
// result is a new slice, oldest first.
func compactEvents(events []Event, limit int) []Event {
	if len(events) <= limit {
		return events
	}
	count := map[string]int{}
	for i := range events {
		count[historyKey(&events[i])]++
	}
	sizes := make([]int, 0, len(count))
	for _, n := range count {
		sizes = append(sizes, n)
	}
	quota := fairQuota(sizes, limit)
	kept := make(map[string]int, len(count))
	keep := make([]bool, len(events))
	n := 0
	for i := len(events) - 1; i >= 0; i-- {
		k := historyKey(&events[i])
		if kept[k] < quota {
			kept[k]++
			keep[i] = true
			n++
		}
	}
	out := make([]Event, 0, n)
	for i := range events {
		if keep[i] {
			out = append(out, events[i])
		}
	}
	return out
}

// fairQuota returns the largest q for which the sum over sizes of
// min(size, q) is at most limit (limit when every size fits).
func fairQuota(sizes []int, limit int) int {
	sort.Ints(sizes)
	used := 0
	for i, n := range sizes {
		rest := len(sizes) - i // keys of size n or more
		if used+n*rest > limit {
			return (limit - used) / rest
		}
		used += n
	}
	return limit
}
