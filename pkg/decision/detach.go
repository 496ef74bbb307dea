package decision

import (
	"fmt"
	"strings"
	"time"

	"github.com/clustermgr/clustermgr/pkg/fencing"
)

// DetachAge is how long a standby's WAL receiver must have received
// nothing for the standby to count as detached from the old primary
// while the receiver still says "streaming" (a receiver cut off without a
// reset keeps that state until wal_receiver_timeout). A primary whose
// lease has run out writes WAL at each of its agent's checks: at most
// 100 ms apart plus one check (500 ms to connect and commit, the 300 ms
// ack wait), 0.9 s in all. A standby that received nothing for longer
// acknowledged none of the checks that kept the primary serving; 1.5 s
// leaves room for a busy host.
const DetachAge = 1500 * time.Millisecond

// StandbyLink is one standby of an old primary that a failover could not
// fence through its agent, as the failover probed it once that primary's
// lease had run out.
type StandbyLink struct {
	Node string `json:"node"`
	// Err says why it could not be probed ("" when it answered).
	Err        string `json:"error,omitempty"`
	InRecovery bool   `json:"in_recovery"`
	// Receiver is its WAL receiver's status, "" when none runs, and
	// SenderHost:SenderPort where it receives from.
	Receiver   string `json:"wal_receiver,omitempty"`
	SenderHost string `json:"sender_host,omitempty"`
	SenderPort int    `json:"sender_port,omitempty"`
	// SinceMessage is how long ago, on the standby's clock, its receiver
	// got its last message.
	SinceMessage time.Duration `json:"since_message"`
}

// Detachment is the verdict on promoting without a confirmed fence.
type Detachment struct {
	// OK: enough standbys are detached from the old primary that it
	// cannot keep serving (fencing.DetachedNeeded of the shard).
	OK       bool     `json:"ok"`
	Needed   int      `json:"needed"`
	Detached []string `json:"detached,omitempty"`
	// Receiving are standbys still taking the old primary's WAL; Unseen
	// could not be probed: either may be keeping it serving.
	Receiving []string `json:"receiving,omitempty"`
	Unseen    []string `json:"unseen,omitempty"`
	Reason    string   `json:"reason"`
}

// CheckDetached judges whether a failover that could not fence the old
// primary (host:port) through its agent may promote, from a probe of
// every standby its lease counted, made after that lease ran out. The
// old primary keeps serving only while, with itself, a majority of the
// shard's nodes takes its WAL (fencing.ServingAcks): enough standbys seen
// detached from it leave it no such majority, so its agent has fenced it.
// A standby is detached when it is not in recovery, runs no WAL receiver
// that streams, streams from another node of the shard (others:
// host:port), or has received nothing for DetachAge. A receiver streaming
// from an address the shard does not know may be the old primary under
// another name, and counts as receiving; so does an unseen standby, which
// may be on the old primary's side of a partition.
func CheckDetached(host string, port int, others []string, links []StandbyLink) Detachment {
	d := Detachment{Needed: fencing.DetachedNeeded(1 + len(links))}
	elsewhere := func(l StandbyLink) bool {
		if strings.EqualFold(l.SenderHost, host) && l.SenderPort == port {
			return false
		}
		for _, o := range others {
			if strings.EqualFold(o, fmt.Sprintf("%s:%d", l.SenderHost, l.SenderPort)) {
				return true
			}
		}
		return false
	}
	for _, l := range links {
		switch {
		case l.Err != "":
			d.Unseen = append(d.Unseen, l.Node)
		case !l.InRecovery, l.Receiver != "streaming", elsewhere(l), l.SinceMessage >= DetachAge:
			d.Detached = append(d.Detached, l.Node)
		default:
			d.Receiving = append(d.Receiving, l.Node)
		}
	}
	d.OK = len(d.Detached) >= d.Needed
	old := fmt.Sprintf("%s:%d", host, port)
	switch {
	case d.OK:
		d.Reason = fmt.Sprintf("%d of %d standbys detached from the old primary at %s [%s]: with the %d needed it has no majority left and has fenced itself",
			len(d.Detached), len(links), old, strings.Join(d.Detached, ", "), d.Needed)
	default:
		var parts []string
		if len(d.Receiving) > 0 {
			parts = append(parts, "still receiving its WAL: ["+strings.Join(d.Receiving, ", ")+"]")
		}
		if len(d.Unseen) > 0 {
			var why []string
			for _, l := range links {
				if l.Err != "" {
					why = append(why, l.Node+": "+l.Err)
				}
			}
			parts = append(parts, "not reachable (may be on its side of a partition): ["+strings.Join(d.Unseen, ", ")+"] ("+strings.Join(why, "; ")+")")
		}
		d.Reason = fmt.Sprintf("only %d of %d standbys are seen detached from the old primary at %s, %d needed; %s: it may still serve a majority of the shard, so no standby is promoted",
			len(d.Detached), len(links), old, d.Needed, strings.Join(parts, "; "))
	}
	return d
}
