package meta

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/clustermgr/clustermgr/pkg/pgconf"
)

// EventParameters: a node's parameters were written, and which need a
// restart.
const EventParameters = "parameters"

// MaxParameters bounds the parameters a shard keeps.
const MaxParameters = 200

// nextParameters merges a change (a nil value resets a parameter) into
// the shard's parameters: the new set, the new reset list, and what
// changed, sorted. It checks the names and values (pgconf.Validate) and
// returns nil maps when nothing changes.
func nextParameters(sh *Shard, change map[string]*string) (map[string]string, []string, []string, error) {
	set := map[string]string{}
	var resets []string
	for k, v := range change {
		if v == nil {
			resets = append(resets, k)
			continue
		}
		set[k] = *v
	}
	if err := pgconf.Validate(set); err != nil {
		var pe *pgconf.Error
		if errors.As(err, &pe) {
			return nil, nil, nil, invalid("parameters."+pe.Key, "%s", pe.Msg)
		}
		return nil, nil, nil, invalid("parameters", "%v", err)
	}
	for _, k := range resets {
		if err := pgconf.Validate(map[string]string{k: ""}); err != nil {
			return nil, nil, nil, invalid("parameters", "%v", err)
		}
	}
	next := maps.Clone(sh.Settings.Parameters)
	if next == nil {
		next = map[string]string{}
	}
	reset := slices.Clone(sh.ParamsReset)
	var changed []string
	keys := slices.Sorted(maps.Keys(change))
	for _, k := range keys {
		v := change[k]
		if v == nil {
			if _, ok := next[k]; !ok && slices.Contains(reset, k) {
				continue
			}
			delete(next, k)
			if !slices.Contains(reset, k) {
				reset = append(reset, k)
			}
			changed = append(changed, k+" reset")
			continue
		}
		if cur, ok := next[k]; ok && cur == *v {
			continue
		}
		next[k] = *v
		reset = slices.DeleteFunc(reset, func(r string) bool { return r == k })
		changed = append(changed, fmt.Sprintf("%s=%s", k, *v))
	}
	if len(next) > MaxParameters {
		return nil, nil, nil, invalid("parameters", "a shard keeps at most %d parameters", MaxParameters)
	}
	if len(changed) == 0 {
		return nil, nil, nil, nil
	}
	sort.Strings(reset)
	if len(next) == 0 {
		next = nil
	}
	return next, reset, changed, nil
}

func applyParamsApplied(s *State, c *ParamsApplied, p pass) error {
	sh, n, err := s.shardNode(c.Cluster, c.Shard, c.Node)
	if err != nil {
		return err
	}
	if c.Version > sh.ParamsVersion {
		return invalid("version", "%d is ahead of the shard's parameters (%d)", c.Version, sh.ParamsVersion)
	}
	if c.Version <= n.ParamsApplied || p.check {
		return nil
	}
	nn := *n
	nn.ParamsApplied = c.Version
	sh.Nodes[c.Node] = &nn
	msg := fmt.Sprintf("%s: parameters of version %d written and reloaded", c.Node, c.Version)
	if len(c.Pending) > 0 {
		msg += "; restart pending for " + strings.Join(c.Pending, ", ")
	}
	s.addEvent(Event{At: c.At, Kind: EventParameters, Cluster: c.Cluster, Shard: c.Shard, Node: c.Node, Message: msg})
	return nil
}

// EventMaintenance: a node was put in maintenance or taken out.
const EventMaintenance = "maintenance"

// MaxMaintenanceReason bounds the reason an operator gives.
const MaxMaintenanceReason = 500

func applySetMaintenance(s *State, c *SetMaintenance, p pass) error {
	sh, n, err := s.shardNode(c.Cluster, c.Shard, c.Node)
	if err != nil {
		return err
	}
	if len(c.Reason) > MaxMaintenanceReason {
		return invalid("reason", "is %d bytes long; the limit is %d", len(c.Reason), MaxMaintenanceReason)
	}
	for _, r := range c.Reason {
		if r < 0x20 || r == 0x7f {
			return invalid("reason", "holds the control character %U", r)
		}
	}
	if c.On && n.Role == RolePrimary {
		return conflict("%s is the primary: switch over first, then put it in maintenance", c.Node)
	}
	if n.Maintenance == c.On && (!c.On || n.MaintenanceReason == c.Reason) {
		return nil
	}
	if p.check {
		return nil
	}
	nn := *n
	nn.Maintenance, nn.MaintenanceReason = c.On, ""
	msg := c.Node + " is out of maintenance"
	if c.On {
		nn.MaintenanceReason = c.Reason
		msg = c.Node + " is in maintenance: no failover, switchover, synchronous set, rejoin or parameters for it"
		if c.Reason != "" {
			msg += " (" + c.Reason + ")"
		}
	}
	sh.Nodes[c.Node] = &nn
	s.addEvent(Event{At: c.At, Kind: EventMaintenance, Cluster: c.Cluster, Shard: c.Shard, Node: c.Node, Message: msg})
	return nil
}

// shardNode returns a shard and one of its nodes.
func (s *State) shardNode(cluster, shard, node string) (*Shard, *Node, error) {
	sh, err := s.shard(cluster, shard)
	if err != nil {
		return nil, nil, err
	}
	n, ok := sh.Nodes[node]
	if !ok {
		return nil, nil, notFound("node %q is not in shard %s/%s", node, cluster, shard)
	}
	return sh, n, nil
}
