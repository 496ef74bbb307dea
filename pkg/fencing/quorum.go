package fencing

// The two sides of a primary whose lease has run out, in a shard of n
// nodes (the primary and its n-1 standbys): the primary keeps serving
// only while, with itself, a majority of the nodes takes its WAL; a
// failover that could not fence it through its agent promotes only when
// enough standbys are seen detached from it that no such majority can
// remain. Both numbers count standbys: ServingAcks(n) + DetachedNeeded(n)
// exceeds n-1, so the two sets share a standby, which cannot both take
// the old primary's WAL and be detached from it.

// ServingAcks is how many of its n-1 standbys must acknowledge WAL a
// primary whose lease has run out has just written for it to keep
// serving: 0 for a primary alone (nothing could replace it), else with
// the primary a majority of n.
func ServingAcks(n int) int {
	if n < 1 {
		return 0
	}
	return n / 2
}

// DetachedNeeded is how many of the n-1 standbys a failover that could
// not fence the old primary through its agent must see detached from it
// (promoted, or receiving nothing from it) before it promotes one.
func DetachedNeeded(n int) int {
	if n < 1 {
		return 0
	}
	return n - n/2
}
