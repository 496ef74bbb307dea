package status

// Health is a node's health.
type Health string

// Node health states.
const (
	Unknown Health = "unknown"
	Healthy Health = "healthy"
	Suspect Health = "suspect"
	Down    Health = "down"
)

// Event is what a probe found.
type Event int

// Probe events.
const (
	ProbeOK      Event = iota // answered
	ProbeRefused              // connection refused: definite
	ProbeFailed               // timeout or other error: debounced
)

// Node is one node's machine.
type Node struct {
	state     Health
	failures  int
	threshold int
}

// NewNode returns a machine that declares a node down after threshold
// consecutive failed probes (at least 1).
func NewNode(threshold int) *Node {
	return &Node{state: Unknown, threshold: max(threshold, 1)}
}

// State returns the current health.
func (n *Node) State() Health { return n.state }

// Failures returns the consecutive failed probes.
func (n *Node) Failures() int { return n.failures }

// Observe applies a probe event and reports the new state and whether it
// changed.
func (n *Node) Observe(ev Event) (Health, bool) {
	if ev == ProbeOK {
		n.failures = 0
	} else {
		n.failures++
	}
	next := nextHealth(n.state, ev, n.failures >= n.threshold)
	changed := next != n.state
	n.state = next
	return next, changed
}

// nextHealth is the node transition table. reached says whether the
// failure threshold is reached with this event.
func nextHealth(from Health, ev Event, reached bool) Health {
	switch ev {
	case ProbeOK:
		return Healthy
	case ProbeRefused:
		return Down
	}
	switch {
	case reached:
		return Down
	case from == Down:
		return Down
	default:
		return Suspect
	}
}
