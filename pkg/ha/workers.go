package ha

import (
	"sync"

	"github.com/clustermgr/clustermgr/pkg/api"
)

// workers is the state of the leader's per-shard workers: which shards
// have a decision round under way (one at a time per shard, each in its
// own goroutine, so a shard whose SQL or agent hangs holds up only its own
// next round), each shard's last decision, the last refusal recorded as
// an event, and the last node and shard states recorded.
type workers struct {
	mu        sync.Mutex
	deciding  map[string]bool         // shard key → a round runs
	decisions map[string]api.Decision // shard key → last decision
	noted     map[string]string       // shard key → last refusal recorded
	recorded  map[string]string       // node or shard key → last state recorded
}

func newWorkers() *workers {
	return &workers{deciding: map[string]bool{}, decisions: map[string]api.Decision{}, noted: map[string]string{}, recorded: map[string]string{}}
}

// claim marks a round of the shard under way unless one is.
func (w *workers) claim(key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.deciding[key] {
		return false
	}
	w.deciding[key] = true
	return true
}

// release ends the shard's round.
func (w *workers) release(key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.deciding, key)
}

// newTerm forgets the rounds of an earlier term.
func (w *workers) newTerm() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.deciding = map[string]bool{}
}

func (w *workers) setDecision(key string, d api.Decision) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.decisions[key] = d
}

func (w *workers) decision(key string) (api.Decision, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d, ok := w.decisions[key]
	return d, ok
}

// note records reason as the shard's last refusal and reports whether it
// differs from the one before ("" forgets it).
func (w *workers) note(key, reason string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if reason == "" {
		delete(w.noted, key)
		return false
	}
	same := w.noted[key] == reason
	w.noted[key] = reason
	return !same
}

// lastRecorded returns key's last recorded state.
func (w *workers) lastRecorded(key string) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	state, ok := w.recorded[key]
	return state, ok
}

// swapRecorded records state as key's last recorded state and returns the
// one before.
func (w *workers) swapRecorded(key, state string) (prev string, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	prev, ok = w.recorded[key]
	w.recorded[key] = state
	return prev, ok
}
