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
	// Configure writes the shard's PostgreSQL parameters to Node and
	// reloads it.
	Configure Kind = "configure"
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
	// PrimaryTimeline is the declared primary's last known timeline, 0
	// when unknown (the highest timeline among the healthy standbys is
	// then the reference: referenceTimeline), and PrimarySeenAt the time
	// of its last answered probe.
	PrimaryTimeline uint32
	PrimarySeenAt   time.Time
	// PrimaryHistory is the declared primary's timeline history, when
	// known: the timelines it descends from and where it left each. A
	// standby still on one of them, at or before that point, holds only
	// WAL of the primary's history (a promotion it has not followed yet).
	PrimaryHistory []collector.TimelineSwitch
	// ParamsVersion is the version of the shard's parameters; a node
	// whose ParamsApplied is lower needs them written.
	ParamsVersion uint64
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
	Lag      int64         `json:"lag_bytes"` // behind the best known position (bestKnownPosition)
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
		// A node in maintenance is its operator's: no rejoin, no
		// repoint.
		if n.Role != meta.RoleStandby || n.Maintenance {
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
		out = append(out, decideConfigure(in, out)...)
	}
	return out
}

// decideConfigure writes the shard's parameters to each healthy node
// that lacks their latest version and that no other decision is about
// (a node being rejoined or repointed is configured after): the primary
// first, then the standbys by name. Parameters change only under a
// healthy primary.
func decideConfigure(in Input, others []Decision) []Decision {
	busy := map[string]bool{}
	for _, d := range others {
		busy[d.Node] = true
	}
	var out []Decision
	for _, primaryPass := range []bool{true, false} {
		for _, n := range in.Nodes {
			if (n.Role == meta.RolePrimary) != primaryPass || n.ParamsApplied >= in.ParamsVersion || busy[n.Name] || n.Maintenance || in.Views[n.Name].Health != status.Healthy {
				continue
			}
			out = append(out, Decision{Kind: Configure, Node: n.Name,
				Reason: fmt.Sprintf("%s has the shard's parameters of version %d, not %d: write them and reload", n.Name, n.ParamsApplied, in.ParamsVersion)})
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
	sync := syncMode(in)
	if sync && len(in.SyncSet) == 0 && len(in.SyncPool) == 0 {
		d.Reason = down + "; synchronous mode is " + in.SyncMode + " but no synchronous standby is recorded, so no standby is known to hold every acknowledged commit: no automatic failover"
		return d
	}
	if sync && len(in.SyncSet) == 0 {
		// One member of the pool holds every acknowledged commit: only
		// with every member seen is the most advanced one known.
		if why := poolUnseen(in); why != "" {
			d.Reason = fmt.Sprintf("%s; synchronous mode: one of [%s] holds every acknowledged commit, but %s: no automatic failover",
				down, strings.Join(in.SyncPool, ", "), why)
			return d
		}
	}
	for i := range cands {
		if cands[i].Rejected == "" {
			if sync && len(in.SyncSet) == 0 {
				// The pool's holder of every commit is its most advanced
				// member: nothing behind it may be promoted.
				if n, l, ok := poolAhead(in, cands[i].LSN); ok {
					d.Reason = fmt.Sprintf("%s; synchronous mode: %s of the pool [%s] is the most advanced (%s) but cannot be promoted: no automatic failover",
						down, n, strings.Join(in.SyncPool, ", "), l)
					return d
				}
			}
			cands[i].Chosen = true
			d.Kind, d.Node = Failover, cands[i].Node
			if p != nil {
				down = fmt.Sprintf("%s (%d of %d manager replicas agree)", down, in.DownVotes, in.Voters)
			}
			d.Reason = fmt.Sprintf("%s; promote %s: %s", down, cands[i].Node, describe(cands[i]))
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
// LSN, then priority, then name; rejected ones carry the reason. A
// candidate must be on the reference timeline (referenceTimeline) and
// within max_lag_on_failover of the best known position
// (bestKnownPosition), which counts standbys that may not be promoted.
func rankCandidates(in Input) []Candidate {
	inSync := map[string]bool{}
	members := in.SyncSet
	if len(members) == 0 {
		members = in.SyncPool
	}
	for _, n := range members {
		inSync[n] = true
	}
	sync := syncMode(in)
	ref := referenceTimeline(in)
	var cands []Candidate
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
		case n.Maintenance:
			c.Rejected = "is in maintenance"
		case n.HasTag(meta.TagNoFailover):
			c.Rejected = "is tagged nofailover"
		case v.Sample == nil || !v.Sample.InRecovery:
			c.Rejected = "is not a standby in recovery"
		case ref.rejects(c.Timeline, c.LSN) != "":
			c.Rejected = ref.rejects(c.Timeline, c.LSN)
		case notStreamingAtPrimaryDeath(in, n.Name, v):
			c.Rejected = "was not streaming when the primary was last seen: its position is not known to be on the primary's history"
		case sync && !inSync[n.Name]:
			c.Rejected = "was not in the synchronous set [" + strings.Join(members, ", ") + "]"
		}
		cands = append(cands, c)
	}
	best, limit := bestKnownPosition(in, ref), maxLag(in)
	for i := range cands {
		if cands[i].Rejected == "" {
			cands[i].Lag = behind(best, cands[i].LSN)
			if cands[i].Lag > limit {
				cands[i].Rejected = fmt.Sprintf("is %d bytes behind %s (max_lag_on_failover %d)", cands[i].Lag, best, limit)
			}
		}
	}
	sortCandidates(cands)
	return cands
}

func syncMode(in Input) bool {
	return in.SyncMode == meta.SyncOn || in.SyncMode == meta.SyncStrict
}

// poolUnseen says which member of the synchronous pool (the old primary
// aside) is not seen as a healthy standby in recovery, and how; "" when
// every member is. Only with every member seen is the one holding every
// acknowledged commit, the most advanced, known.
func poolUnseen(in Input) string {
	p := in.primary()
	for _, n := range in.SyncPool {
		if p != nil && n == p.Name {
			continue
		}
		switch v := in.Views[n]; {
		case v.Health != status.Healthy:
			return fmt.Sprintf("%s cannot be seen (%s)", n, orUnknown(v.Health))
		case v.Sample == nil:
			return n + " has not been sampled"
		case !v.Sample.InRecovery:
			return n + " accepts writes (not in recovery)"
		}
	}
	return ""
}

// poolAhead returns the first member of the synchronous pool (the old
// primary aside) whose position is past lsn: a node at lsn may lack
// acknowledged commits that member holds.
func poolAhead(in Input, lsn collector.LSN) (string, collector.LSN, bool) {
	p := in.primary()
	for _, n := range in.SyncPool {
		if s := in.Views[n].Sample; s != nil && (p == nil || n != p.Name) && s.LSN() > lsn {
			return n, s.LSN(), true
		}
	}
	return "", 0, false
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
	var tagged []string // healthy and streaming, but tagged nofailover
	anyHealthy := false
	for _, n := range in.Nodes {
		if n.Role != meta.RoleStandby {
			continue
		}
		v := in.Views[n.Name]
		anyHealthy = anyHealthy || v.Health == status.Healthy
		switch {
		case v.Health != status.Healthy || !streamsFrom(v.Sample, p.Host, p.Port) || n.Maintenance:
		case n.HasTag(meta.TagNoFailover):
			tagged = append(tagged, n.Name)
		default:
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
		switch {
		case len(tagged) == 1:
			reason = fmt.Sprintf("no standby may be synchronous: %s streams from %s but is tagged nofailover", tagged[0], p.Name)
		case len(tagged) > 1:
			reason = fmt.Sprintf("no standby may be synchronous: %s stream from %s but are tagged nofailover", strings.Join(tagged, ", "), p.Name)
		case anyHealthy:
			reason = "no healthy standby streams from " + p.Name
		default:
			reason = "no standby is healthy"
		}
		if in.SyncMode == meta.SyncStrict {
			if len(in.SyncSet) == 0 {
				return Decision{}, false
			}
			want = append([]string(nil), in.SyncSet...)
			reason += "; strict mode keeps the synchronous set and writes wait"
		} else {
			reason += "; synchronous mode on degrades to asynchronous"
		}
	}
	if strings.Join(want, ",") == strings.Join(in.SyncSet, ",") && current == SyncStandbyNames(want) {
		return Decision{}, false
	}
	return Decision{Kind: SyncSet, SyncNames: want, Reason: reason}, true
}

// inMaintenance reports whether node name is in maintenance.
func inMaintenance(in Input, name string) bool {
	for _, n := range in.Nodes {
		if n.Name == name {
			return n.Maintenance
		}
	}
	return false
}
