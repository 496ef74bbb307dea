package decision

import (
	"fmt"
	"sort"
	"strings"

	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/status"
)

// Choice is a node picked for a planned operation (a switchover target, a
// backup source), or none with the reason.
type Choice struct {
	Node       string      `json:"node,omitempty"`
	Reason     string      `json:"reason"`
	Candidates []Candidate `json:"candidates,omitempty"`
}

// ahead is the one ranking of standbys that every choice uses: the most
// WAL received first, then the higher priority, then the name.
func ahead(a, b Candidate) bool {
	if a.LSN != b.LSN {
		return a.LSN > b.LSN
	}
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return a.Node < b.Node
}

// sortCandidates orders eligible candidates before rejected ones, each
// group by ahead.
func sortCandidates(cands []Candidate) {
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if (a.Rejected == "") != (b.Rejected == "") {
			return a.Rejected == ""
		}
		return ahead(a, b)
	})
}

// SwitchoverTarget checks that standby name can take over from the
// healthy primary now, or picks the best standby when name is empty: a
// healthy standby streaming from the primary, within max_lag_on_failover
// of the primary's current position, and (when picked, not named) not
// tagged nofailover. The caller checks that the primary is healthy and
// that name is a standby of the shard.
func SwitchoverTarget(in Input, name string) Choice {
	p := in.primary()
	if p == nil {
		return Choice{Reason: "the shard has no primary"}
	}
	// The primary is live: its current position is the one to be level
	// with, and the lag is measured against it alone.
	pos, known := primaryPosition(in, referenceTimeline(in))
	limit := maxLag(in)
	var cands []Candidate
	for _, n := range in.Nodes {
		if n.Role != meta.RoleStandby || (name != "" && n.Name != name) {
			continue
		}
		v := in.Views[n.Name]
		c := Candidate{Node: n.Name, Priority: n.Priority}
		if v.Sample != nil {
			c.LSN, c.Timeline = v.Sample.LSN(), v.Sample.Timeline
			if known {
				c.Lag = behind(pos, c.LSN)
			}
		}
		switch {
		case v.Health != status.Healthy:
			c.Rejected = fmt.Sprintf("is not healthy (%s)", orUnknown(v.Health))
		case n.Maintenance:
			c.Rejected = "is in maintenance"
		case name == "" && n.HasTag(meta.TagNoFailover):
			c.Rejected = "is tagged nofailover"
		case v.Sample == nil || !v.Sample.InRecovery:
			c.Rejected = "is not a standby in recovery"
		case c.Lag > limit:
			c.Rejected = fmt.Sprintf("is %d bytes behind %s (max_lag_on_failover %d)", c.Lag, p.Name, limit)
		case !streamsFrom(v.Sample, p.Host, p.Port):
			c.Rejected = "is not streaming from " + p.Name
		}
		cands = append(cands, c)
	}
	sortCandidates(cands)
	switch {
	case len(cands) == 0 && name == p.Name:
		return Choice{Reason: "no standby can take over: " + name + " is the primary, not a standby"}
	case len(cands) == 0 && name != "":
		return Choice{Reason: "no standby can take over: " + name + " is not a node of the shard"}
	case len(cands) == 0 || cands[0].Rejected != "":
		return Choice{Reason: "no standby can take over: " + rejections(cands), Candidates: cands}
	}
	cands[0].Chosen = true
	return Choice{Node: cands[0].Node, Candidates: cands,
		Reason: fmt.Sprintf("switch over from %s to %s: %s, %d bytes behind", p.Name, cands[0].Node, describe(cands[0]), cands[0].Lag)}
}

// BackupSource picks the node a base backup is taken from: the most
// advanced healthy standby with an agent that streams from the primary,
// so the primary is spared the read; else the healthy primary when it has
// an agent.
func BackupSource(in Input) Choice {
	p := in.primary()
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
		case n.Agent == "":
			c.Rejected = "has no agent"
		case v.Health != status.Healthy:
			c.Rejected = fmt.Sprintf("is not healthy (%s)", orUnknown(v.Health))
		case p == nil || !streamsFrom(v.Sample, p.Host, p.Port):
			c.Rejected = "is not streaming from the primary"
		}
		cands = append(cands, c)
	}
	sortCandidates(cands)
	if len(cands) > 0 && cands[0].Rejected == "" {
		cands[0].Chosen = true
		return Choice{Node: cands[0].Node, Candidates: cands,
			Reason: "base backup from standby " + cands[0].Node + ": " + describe(cands[0])}
	}
	var why []string
	if len(cands) > 0 {
		why = append(why, "no standby can serve it: "+rejections(cands))
	}
	switch {
	case p == nil:
		why = append(why, "the shard has no primary")
	case p.Agent == "":
		why = append(why, "primary "+p.Name+" has no agent")
	case in.Views[p.Name].Health != status.Healthy:
		why = append(why, fmt.Sprintf("primary %s is not healthy (%s)", p.Name, orUnknown(in.Views[p.Name].Health)))
	default:
		reason := "base backup from primary " + p.Name
		if len(why) > 0 {
			reason += "; " + why[0]
		}
		return Choice{Node: p.Name, Reason: reason, Candidates: cands}
	}
	return Choice{Reason: "no node can take a base backup: " + strings.Join(why, "; "), Candidates: cands}
}
