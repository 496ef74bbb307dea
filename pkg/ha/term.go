package ha

import (
	"context"
	"time"
)

// termStartWait is how long a request waits for the term of a replica
// that has won an election and not yet started its term.
const termStartWait = 5 * time.Second

// awaitLeading is leading for a request: on a replica that has won the
// election but not yet started its term (the barrier after the election,
// its member record), it waits for the term, up to termWait, instead of
// answering that leadership is changing to itself. A follower answers at
// once.
func (m *Manager) awaitLeading(ctx context.Context) error {
	err := m.leading()
	if err == nil || !m.store.IsLeader() {
		return err
	}
	deadline := time.NewTimer(m.termWait)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return err
		case <-deadline.C:
			return m.leading()
		case <-tick.C:
			if err = m.leading(); err == nil || !m.store.IsLeader() {
				return err
			}
		}
	}
}
