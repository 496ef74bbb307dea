package decision

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/status"
)

// Kind is what a decision asks for.
type Kind string

// Decision kinds.
const (
	None     Kind = "none"     // nothing to do; Reason says why (e.g. a refused failover)
	Failover Kind = "failover" // promote Node
	Rejoin   Kind = "rejoin"   // make Node a standby of the primary again (fence, rewind, start)
	Repoint  Kind = "repoint"  // point standby Node at the primary
	SyncSet  Kind = "sync-set" // make SyncNames the synchronous standbys
)

// NodeView is what the leader knows of a node now.
type NodeView struct {
	Health status.Health
	// Sample is the latest sample, nil when the node never answered.
	Sample *collector.Sample
	// UpSince is the first of the node's current run of answered probes;
	// StreamedAt the last probe that found its WAL receiver streaming.
	UpSince, StreamedAt time.Time
}

// Input is everything Decide looks at.
type Input struct {
	Cluster, Shard string
	Nodes          []meta.Node
	Views          map[string]NodeView
	// DownVotes is how many manager replicas (the leader included) see the
	// declared primary down; Voters is the size of the manager group.
	DownVotes, Voters int
	AutoFailover      bool
	SyncMode          string
	SyncSet           []string // recorded in Raft
	// SyncPool is recorded at a promotion in synchronous mode until a
	// SyncSet is: one of its members holds every acknowledged commit.
	SyncPool []string
	MaxLag   int64
	// PrimaryTimeline is the declared primary's last known timeline and
	// PrimarySeenAt the time of its last answered probe.
	PrimaryTimeline uint32
	PrimarySeenAt   time.Time
	// Now is the time of the decision; StreamGrace how long a standby may
	// go without streaming before it counts as not streaming.
	Now         time.Time
	StreamGrace time.Duration
}

// Candidate is one standby's standing in a failover decision.
type Candidate struct {
	Node     string        `json:"node"`
	LSN      collector.LSN `json:"lsn"`
	Timeline uint32        `json:"timeline"`
	Priority int           `json:"priority"`
	Lag      int64         `json:"lag_bytes"` // behind the best eligible standby
	Chosen   bool          `json:"chosen,omitempty"`
	Rejected string        `json:"rejected,omitempty"`
}

// Decision is one thing to do, with its reason.
type Decision struct {
	Kind       Kind        `json:"kind"`
	Node       string      `json:"node,omitempty"`
	Reason     string      `json:"reason"`
	Candidates []Candidate `json:"candidates,omitempty"`
	SyncNames  []string    `json:"sync_names,omitempty"`
	// Diverged, on a rejoin: the node cannot follow the primary as it is
	// and must be rewound (see PlanRejoin).
	Diverged bool `json:"diverged,omitempty"`
}

func (in *Input) primary() *meta.Node {
	for i := range in.Nodes {
		if in.Nodes[i].Role == meta.RolePrimary {
			return &in.Nodes[i]
		}
	}
	return nil
}

// streamsFrom reports whether a standby's sample shows it receiving WAL
// from host:port.
func streamsFrom(s *collector.Sample, host string, port int) bool {
	return s != nil && s.InRecovery && s.Receiver != nil && s.Receiver.Status == "streaming" &&
		strings.EqualFold(s.Receiver.SenderHost, host) && s.Receiver.SenderPort == port
}

// Decide returns the decisions for one shard, most important first.
func Decide(in Input) []Decision {
	p := in.primary()
	if p == nil || in.Views[p.Name].Health == status.Down {
		return []Decision{decideFailover(in, p)}
	}
	var out []Decision
	for _, n := range in.Nodes {
		if n.Role != meta.RoleStandby {
			continue
		}
		v := in.Views[n.Name]
		switch {
		case v.Health == status.Healthy && v.Sample != nil && !v.Sample.InRecovery:
			out = append(out, Decision{Kind: Rejoin, Node: n.Name, Diverged: true,
				Reason: fmt.Sprintf("%s is declared a standby but accepts writes (not in recovery); it must be fenced and rewound from %s", n.Name, p.Name)})
		case v.Health == status.Down:
			out = append(out, Decision{Kind: Rejoin, Node: n.Name,
				Reason: fmt.Sprintf("standby %s is down; start it as a standby of %s (rewinding it only if it was a primary)", n.Name, p.Name)})
		case v.Health == status.Healthy && v.Sample != nil && in.Views[p.Name].Health == status.Healthy && !streamsFrom(v.Sample, p.Host, p.Port):
			if d, ok := decideNotStreaming(in, n, *p, v); ok {
				out = append(out, d)
			}
		}
	}
	// The synchronous set changes only under a healthy primary: standbys
	// that stop streaming because the primary is failing must stay
	// recorded, or the failover that follows has no candidate.
	if in.Views[p.Name].Health == status.Healthy {
		if d, ok := decideSyncSet(in, p); ok {
			out = append(out, d)
		}
	}
	return out
}

// decideNotStreaming handles a healthy standby that does not stream from
// the live primary: one streaming from elsewhere is repointed; one that
// streams from nowhere is given StreamGrace to connect, then repointed,
// and after four times that it is taken as diverged (its WAL is not on the
// primary's history, so PostgreSQL refuses to stream) and rewound.
func decideNotStreaming(in Input, n, p meta.Node, v NodeView) (Decision, bool) {
	if r := v.Sample.Receiver; r != nil && r.Status == "streaming" {
		return Decision{Kind: Repoint, Node: n.Name,
			Reason: fmt.Sprintf("standby %s streams from %s:%d, not from primary %s at %s:%d", n.Name, r.SenderHost, r.SenderPort, p.Name, p.Host, p.Port)}, true
	}
	if v.UpSince.IsZero() || in.StreamGrace <= 0 {
		return Decision{}, false
	}
	since := v.UpSince
	if v.StreamedAt.After(since) {
		since = v.StreamedAt
	}
	stalled := in.Now.Sub(since)
	switch {
	case stalled >= 4*in.StreamGrace:
		return Decision{Kind: Rejoin, Node: n.Name, Diverged: true,
			Reason: fmt.Sprintf("standby %s has not streamed from primary %s for %s: its WAL is not on the primary's history; rewind it", n.Name, p.Name, stalled.Round(time.Second))}, true
	case stalled >= in.StreamGrace:
		return Decision{Kind: Repoint, Node: n.Name,
			Reason: fmt.Sprintf("standby %s streams from nowhere, not from primary %s at %s:%d", n.Name, p.Name, p.Host, p.Port)}, true
	}
	return Decision{}, false
}

func decideFailover(in Input, p *meta.Node) Decision {
	down := "no primary is declared"
	if p != nil {
		down = fmt.Sprintf("primary %s is down", p.Name)
	}
	if !in.AutoFailover {
		return Decision{Kind: None, Reason: down + " but automatic failover is paused"}
	}
	if p != nil && in.DownVotes*2 <= in.Voters {
		return Decision{Kind: None, Reason: fmt.Sprintf("%s for %d of %d manager replicas; a majority must agree", down, in.DownVotes, in.Voters)}
	}
	if p != nil {
		for _, n := range in.Nodes {
			if v := in.Views[n.Name]; n.Role == meta.RoleStandby && streamsFrom(v.Sample, p.Host, p.Port) && v.Health == status.Healthy {
				return Decision{Kind: None, Reason: fmt.Sprintf("%s, but standby %s still receives WAL from it", down, n.Name)}
			}
		}
	}
	cands := rankCandidates(in)
	d := Decision{Kind: None, Candidates: cands}
	sync := in.SyncMode == meta.SyncOn || in.SyncMode == meta.SyncStrict
	if sync && len(in.SyncSet) == 0 && len(in.SyncPool) == 0 {
		d.Reason = down + "; synchronous mode is " + in.SyncMode + " but no synchronous standby is recorded, so no standby is known to hold every acknowledged commit: no automatic failover"
		return d
	}
	if sync && len(in.SyncSet) == 0 {
		// One member of the pool holds every acknowledged commit: only
		// with every member seen is the most advanced one known.
		for _, n := range in.SyncPool {
			if p != nil && n == p.Name {
				continue
			}
			if v := in.Views[n]; v.Health != status.Healthy || v.Sample == nil || !v.Sample.InRecovery {
				d.Reason = fmt.Sprintf("%s; synchronous mode: one of [%s] holds every acknowledged commit, but %s cannot be seen (%s): no automatic failover",
					down, strings.Join(in.SyncPool, ", "), n, orUnknown(v.Health))
				return d
			}
		}
	}
	for i := range cands {
		if cands[i].Rejected == "" {
			if sync && len(in.SyncSet) == 0 {
				// The pool's holder of every commit is its most advanced
				// member: nothing behind it may be promoted.
				for _, n := range in.SyncPool {
					if s := in.Views[n].Sample; s != nil && (p == nil || n != p.Name) && s.LSN() > cands[i].LSN {
						d.Reason = fmt.Sprintf("%s; synchronous mode: %s of the pool [%s] is the most advanced (%s) but cannot be promoted: no automatic failover",
							down, n, strings.Join(in.SyncPool, ", "), s.LSN())
						return d
					}
				}
			}
			cands[i].Chosen = true
			d.Kind, d.Node = Failover, cands[i].Node
			d.Reason = fmt.Sprintf("%s (%d of %d manager replicas agree); promote %s: %s", down, in.DownVotes, in.Voters, cands[i].Node, describe(cands[i]))
			return d
		}
	}
	d.Reason = down + "; no standby can be promoted: " + rejections(cands)
	return d
}

func describe(c Candidate) string {
	return fmt.Sprintf("LSN %s on timeline %d, priority %d", c.LSN, c.Timeline, c.Priority)
}

func rejections(cands []Candidate) string {
	if len(cands) == 0 {
		return "the shard has no standby"
	}
	var parts []string
	for _, c := range cands {
		parts = append(parts, c.Node+" "+c.Rejected)
	}
	return strings.Join(parts, "; ")
}

// rankCandidates scores every standby: eligible ones first, by received
// LSN, then priority, then name; rejected ones carry the reason.
func rankCandidates(in Input) []Candidate {
	inSync := map[string]bool{}
	members := in.SyncSet
	if len(members) == 0 {
		members = in.SyncPool
	}
	for _, n := range members {
		inSync[n] = true
	}
	sync := in.SyncMode == meta.SyncOn || in.SyncMode == meta.SyncStrict
	var cands []Candidate
	var best collector.LSN
	for _, n := range in.Nodes {
		if n.Role != meta.RoleStandby {
			continue
		}
		v := in.Views[n.Name]
		c := Candidate{Node: n.Name, Priority: n.Priority}
		if v.Sample != nil {
			c.LSN, c.Timeline = v.Sample.LSN(), v.Sample.Timeline
		}
		switch {
		case v.Health != status.Healthy:
			c.Rejected = fmt.Sprintf("is not healthy (%s)", orUnknown(v.Health))
		case n.HasTag(meta.TagNoFailover):
			c.Rejected = "is tagged nofailover"
		case v.Sample == nil || !v.Sample.InRecovery:
			c.Rejected = "is not a standby in recovery"
		case in.PrimaryTimeline != 0 && c.Timeline != in.PrimaryTimeline:
			c.Rejected = fmt.Sprintf("is on timeline %d, not the primary's %d", c.Timeline, in.PrimaryTimeline)
		case !in.PrimarySeenAt.IsZero() && v.StreamedAt.Before(in.PrimarySeenAt.Add(-in.StreamGrace)):
			c.Rejected = "was not streaming when the primary was last seen: its position is not known to be on the primary's history"
		case sync && !inSync[n.Name]:
			c.Rejected = "was not in the synchronous set [" + strings.Join(members, ", ") + "]"
		default:
			best = max(best, c.LSN)
		}
		cands = append(cands, c)
	}
	maxLag := in.MaxLag
	if maxLag <= 0 {
		maxLag = meta.DefaultMaxLagOnFailover
	}
	for i := range cands {
		if cands[i].Rejected == "" {
			cands[i].Lag = int64(best - cands[i].LSN)
			if cands[i].Lag > maxLag {
				cands[i].Rejected = fmt.Sprintf("is %d bytes behind the best standby (max_lag_on_failover %d)", cands[i].Lag, maxLag)
			}
		}
	}
	sortCandidates(cands)
	return cands
}

func orUnknown(h status.Health) string {
	if h == "" {
		return string(status.Unknown)
	}
	return string(h)
}

// SyncStandbyNames renders synchronous_standby_names for a set in which
// every member must confirm a commit (FIRST n of n), so that each member
// holds every acknowledged commit and any of them may be promoted.
func SyncStandbyNames(names []string) string {
	if len(names) == 0 {
		return ""
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = `"` + n + `"`
	}
	return fmt.Sprintf("FIRST %d (%s)", len(names), strings.Join(quoted, ", "))
}

// decideSyncSet returns the synchronous set decision when the recorded set
// or the primary's setting must change. The set is one standby: the
// recorded one while it stays healthy and streaming, else the best healthy
// streaming standby.
func decideSyncSet(in Input, p *meta.Node) (Decision, bool) {
	pv := in.Views[p.Name]
	current := ""
	if pv.Sample != nil {
		current = pv.Sample.SyncStandbyNames
	}
	if in.SyncMode != meta.SyncOn && in.SyncMode != meta.SyncStrict {
		if len(in.SyncSet) > 0 || current != "" {
			return Decision{Kind: SyncSet, Reason: "synchronous mode is off: clear synchronous_standby_names"}, true
		}
		return Decision{}, false
	}
	eligible := map[string]bool{}
	var cands []Candidate
	for _, n := range in.Nodes {
		if n.Role != meta.RoleStandby || n.HasTag(meta.TagNoFailover) {
			continue
		}
		if v := in.Views[n.Name]; v.Health == status.Healthy && streamsFrom(v.Sample, p.Host, p.Port) {
			eligible[n.Name] = true
			cands = append(cands, Candidate{Node: n.Name, LSN: v.Sample.LSN(), Priority: n.Priority})
		}
	}
	var want []string
	reason := ""
	for _, n := range in.SyncSet {
		if eligible[n] && len(want) == 0 {
			want = []string{n}
			reason = "synchronous standby " + n + " stays: healthy and streaming from " + p.Name
		}
	}
	if len(want) == 0 && len(cands) > 0 {
		sort.Slice(cands, func(i, j int) bool { return ahead(cands[i], cands[j]) })
		want = []string{cands[0].Node}
		reason = "synchronous standby " + cands[0].Node + ": the most advanced healthy standby streaming from " + p.Name
	}
	if len(want) == 0 {
		if in.SyncMode == meta.SyncStrict {
			if len(in.SyncSet) == 0 {
				return Decision{}, false
			}
			want = append([]string(nil), in.SyncSet...)
			reason = "no standby is healthy; strict mode keeps the synchronous set and writes wait"
		} else {
			reason = "no standby is healthy; synchronous mode on degrades to asynchronous"
		}
	}
	if strings.Join(want, ",") == strings.Join(in.SyncSet, ",") && current == SyncStandbyNames(want) {
		return Decision{}, false
	}
	return Decision{Kind: SyncSet, SyncNames: want, Reason: reason}, true
}
