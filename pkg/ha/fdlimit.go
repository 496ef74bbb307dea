package ha

import (
	"log/slog"
	"sync"
	"syscall"
)

// A replica keeps a connection open to every node it probes and, when it
// leads, one to every node's agent (lease renewals, role declarations).
// Past the process's open-file limit, probes and renewals fail with "too
// many open files" and healthy nodes are seen down: at 10,000 nodes a
// leader needs more than 20,000 descriptors.
const (
	// fdsPerNode: the probe's connection and the agent's.
	fdsPerNode = 2
	// fdsSpare: Raft, the API's clients, the followers, files.
	fdsSpare = 512
)

// fdsNeeded is how many open files a replica leading nodes may need.
func fdsNeeded(nodes int) uint64 { return uint64(fdsPerNode*nodes + fdsSpare) }

// openFileLimit returns the process's open-file limit (the soft one,
// which the Go runtime raises to the hard one at start).
func openFileLimit() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	return r.Cur, nil
}

// fdCheck warns when the fleet outgrows the open-file limit: once, and
// again each time the fleet has grown by a tenth since.
type fdCheck struct {
	limit  func() (uint64, error)
	mu     sync.Mutex
	warned uint64 // the need last warned of
}

func (c *fdCheck) check(nodes int, log *slog.Logger) {
	need := fdsNeeded(nodes)
	lim, err := c.limit()
	if err != nil || lim >= need {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.warned != 0 && need*10 < c.warned*11 {
		return
	}
	c.warned = need
	log.Warn("the open-file limit is below what this fleet needs: a replica keeps a connection to each node and, leading, one to each node's agent; past the limit probes fail and healthy nodes are seen down. Raise it (LimitNOFILE in a systemd unit, ulimit -n)",
		"limit", lim, "needed", need, "nodes", nodes)
}
