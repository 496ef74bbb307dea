package decision

import "time"

// RetryBackoff is the pause before the next automatic attempt at a
// failed operation on a node (a rejoin): base after the first failure,
// doubling with each failure after it, at most 8 times base. A failure
// because the node's agent could not be reached is not counted here: the
// attempt is retried as soon as the agent answers again.
func RetryBackoff(failures int, base time.Duration) time.Duration {
	if failures <= 1 {
		return base
	}
	return base << min(failures-1, 3)
}
