package meta

import (
	"fmt"
	"sort"
	"strings"
)

// Event kinds written by topology commands.
const (
	EventMemberSet       = "member_set"
	EventMemberRemoved   = "member_removed"
	EventClusterCreated  = "cluster_created"
	EventClusterUpdated  = "cluster_updated"
	EventClusterDeleted  = "cluster_deleted"
	EventShardCreated    = "shard_created"
	EventShardDeleted    = "shard_deleted"
	EventNodeAdded       = "node_added"
	EventNodeRemoved     = "node_removed"
	EventPeerSecret      = "peer_secret"
	EventSecretsResealed = "secrets_resealed"
)

// appendBounded appends v to list and drops the oldest entries beyond
// limit. It reslices rather than copies: append reallocates (copying only
// the live entries) when the capacity runs out, so trimming is amortised
// O(1) per entry instead of a copy of the whole history per command.
func appendBounded[T any](list []T, v T, limit int) []T {
	list = append(list, v)
	if over := len(list) - limit; over > 0 {
		list = list[over:]
	}
	return list
}

func applySetMember(s *State, c *SetMember, p pass) error {
	m := c.Member
	if m.ID == "" {
		return invalid("id", "is required")
	}
	if old, ok := s.Members[m.ID]; ok && *old == m {
		return nil
	}
	if p.check {
		return nil
	}
	s.Members[m.ID] = &m
	s.addEvent(Event{At: c.At, Kind: EventMemberSet, Message: fmt.Sprintf("manager replica %s at raft %s, api %s", m.ID, m.RaftAddr, m.APIAddr)})
	return nil
}

func applyRemoveMember(s *State, c *RemoveMember, p pass) error {
	if _, ok := s.Members[c.ID]; !ok {
		return nil
	}
	if p.check {
		return nil
	}
	delete(s.Members, c.ID)
	s.addEvent(Event{At: c.At, Kind: EventMemberRemoved, Message: fmt.Sprintf("manager replica %s removed", c.ID)})
	return nil
}

func applyCreateCluster(s *State, c *CreateCluster, p pass) error {
	if err := ValidateName("name", c.Name); err != nil {
		return err
	}
	if err := ValidateSettings("settings.", c.Settings); err != nil {
		return err
	}
	if err := checkSealed(p, "settings.pg_password", c.Settings.PGPassword); err != nil {
		return err
	}
	if _, ok := s.Clusters[c.Name]; ok {
		return conflict("cluster %q already exists", c.Name)
	}
	if p.check {
		return nil
	}
	s.Clusters[c.Name] = &Cluster{Name: c.Name, Settings: c.Settings, Shards: map[string]*Shard{}, CreatedAt: c.At, UpdatedAt: c.At}
	s.addEvent(Event{At: c.At, Kind: EventClusterCreated, Cluster: c.Name, Message: fmt.Sprintf("cluster %s created", c.Name)})
	return nil
}

func applyUpdateCluster(s *State, c *UpdateCluster, p pass) error {
	cl, ok := s.Clusters[c.Name]
	if !ok {
		return notFound("cluster %q does not exist", c.Name)
	}
	next := cl.Settings
	var changed []string
	if c.PGUser != nil {
		next.PGUser = *c.PGUser
		changed = append(changed, "pg_user")
	}
	if c.PGPassword != nil {
		if err := checkSealed(p, "pg_password", *c.PGPassword); err != nil {
			return err
		}
		next.PGPassword = *c.PGPassword
		changed = append(changed, "pg_password")
	}
	if c.ReplicationUser != nil {
		next.ReplicationUser = *c.ReplicationUser
		changed = append(changed, "replication_user")
	}
	if c.AutoFailover != nil {
		next.AutoFailover = *c.AutoFailover
		changed = append(changed, "auto_failover")
	}
	if err := ValidateSettings("", next); err != nil {
		return err
	}
	if len(changed) == 0 {
		return nil
	}
	if p.check {
		return nil
	}
	cl.Settings = next
	cl.UpdatedAt = c.At
	s.addEvent(Event{At: c.At, Kind: EventClusterUpdated, Cluster: c.Name, Message: "cluster settings changed: " + strings.Join(changed, ", ")})
	return nil
}

func applyDeleteCluster(s *State, c *DeleteCluster, p pass) error {
	cl, ok := s.Clusters[c.Name]
	if !ok {
		return notFound("cluster %q does not exist", c.Name)
	}
	if len(cl.Shards) > 0 && !c.Force {
		return conflict("cluster %q has %d shard(s); delete them first or use force", c.Name, len(cl.Shards))
	}
	if p.check {
		return nil
	}
	delete(s.Clusters, c.Name)
	s.addEvent(Event{At: c.At, Kind: EventClusterDeleted, Cluster: c.Name, Message: fmt.Sprintf("cluster %s deleted with %d shard(s)", c.Name, len(cl.Shards))})
	return nil
}

// dataDirOwner returns "cluster/shard/node" of the node whose data
// directory on agent is dataDir anywhere in the state, or "": two nodes on
// one agent and directory would have one's reinit delete the other's data.
func (s *State) dataDirOwner(agent, dataDir string) string {
	if agent == "" || dataDir == "" {
		return ""
	}
	for _, cl := range s.Clusters {
		for _, sh := range cl.Shards {
			for _, n := range sh.Nodes {
				if n.DataDir == dataDir && n.Agent == agent {
					return cl.Name + "/" + sh.Name + "/" + n.Name
				}
			}
		}
	}
	return ""
}

// endpointOwner returns "cluster/shard/node" of the node registered at
// host:port anywhere in the state, or "".
func (s *State) endpointOwner(host string, port int) string {
	for _, cl := range s.Clusters {
		for _, sh := range cl.Shards {
			for _, n := range sh.Nodes {
				if n.Port == port && strings.EqualFold(n.Host, host) {
					return cl.Name + "/" + sh.Name + "/" + n.Name
				}
			}
		}
	}
	return ""
}

func applyCreateShard(s *State, c *CreateShard, p pass) error {
	cl, ok := s.Clusters[c.Cluster]
	if !ok {
		return notFound("cluster %q does not exist", c.Cluster)
	}
	if err := ValidateName("name", c.Name); err != nil {
		return err
	}
	if len(c.Nodes) == 0 {
		return invalid("nodes", "at least one node is required")
	}
	names := map[string]bool{}
	endpoints := map[string]bool{}
	dataDirs := map[string]bool{}
	primaries := 0
	for i, n := range c.Nodes {
		field := fmt.Sprintf("nodes[%d]", i)
		if n == nil {
			return invalid(field, "is null")
		}
		if err := ValidateNode(field, n); err != nil {
			return err
		}
		if err := s.checkRegistered(field+".agent", n); err != nil {
			return err
		}
		if names[n.Name] {
			return conflict("node name %q appears twice in the shard", n.Name)
		}
		names[n.Name] = true
		ep := strings.ToLower(n.Host) + ":" + fmt.Sprint(n.Port)
		if endpoints[ep] {
			return conflict("%s:%d appears twice in the shard", n.Host, n.Port)
		}
		endpoints[ep] = true
		if owner := s.endpointOwner(n.Host, n.Port); owner != "" {
			return conflict("%s:%d is already registered as %s", n.Host, n.Port, owner)
		}
		if n.Agent != "" && n.DataDir != "" {
			dd := n.Agent + "#" + n.DataDir
			if dataDirs[dd] {
				return conflict("data_dir %s on agent %s appears twice in the shard", n.DataDir, n.Agent)
			}
			dataDirs[dd] = true
			if owner := s.dataDirOwner(n.Agent, n.DataDir); owner != "" {
				return conflict("data_dir %s on agent %s is already node %s", n.DataDir, n.Agent, owner)
			}
		}
		if n.Role == RolePrimary {
			primaries++
		}
	}
	if primaries > 1 {
		return conflict("a shard has at most one primary; %d nodes are declared primary", primaries)
	}
	if _, ok := cl.Shards[c.Name]; ok {
		return conflict("shard %q already exists in cluster %q", c.Name, c.Cluster)
	}
	if p.check {
		return nil
	}
	sh := &Shard{Name: c.Name, Nodes: map[string]*Node{}, Epoch: 1, Settings: c.Settings, CreatedAt: c.At}
	for _, n := range c.Nodes {
		nn := *n
		nn.Tags = append([]string(nil), n.Tags...)
		sort.Strings(nn.Tags)
		nn.AddedAt = c.At
		sh.Nodes[nn.Name] = &nn
	}
	cl.Shards[c.Name] = sh
	s.addEvent(Event{At: c.At, Kind: EventShardCreated, Cluster: c.Cluster, Shard: c.Name, Message: fmt.Sprintf("shard %s created with %d node(s)", c.Name, len(c.Nodes))})
	return nil
}

func (s *State) shard(cluster, shard string) (*Shard, error) {
	cl, ok := s.Clusters[cluster]
	if !ok {
		return nil, notFound("cluster %q does not exist", cluster)
	}
	sh, ok := cl.Shards[shard]
	if !ok {
		return nil, notFound("shard %q does not exist in cluster %q", shard, cluster)
	}
	return sh, nil
}

func applyDeleteShard(s *State, c *DeleteShard, p pass) error {
	sh, err := s.shard(c.Cluster, c.Name)
	if err != nil {
		return err
	}
	if p.check {
		return nil
	}
	delete(s.Clusters[c.Cluster].Shards, c.Name)
	s.addEvent(Event{At: c.At, Kind: EventShardDeleted, Cluster: c.Cluster, Shard: c.Name, Message: fmt.Sprintf("shard %s deleted with %d node(s)", c.Name, len(sh.Nodes))})
	return nil
}

func applyAddNode(s *State, c *AddNode, p pass) error {
	sh, err := s.shard(c.Cluster, c.Shard)
	if err != nil {
		return err
	}
	if c.Node == nil {
		return invalid("node", "is required")
	}
	if err := ValidateNode("", c.Node); err != nil {
		return err
	}
	if err := s.checkRegistered("agent", c.Node); err != nil {
		return err
	}
	if _, ok := sh.Nodes[c.Node.Name]; ok {
		return conflict("node %q already exists in shard %s/%s", c.Node.Name, c.Cluster, c.Shard)
	}
	if owner := s.endpointOwner(c.Node.Host, c.Node.Port); owner != "" {
		return conflict("%s:%d is already registered as %s", c.Node.Host, c.Node.Port, owner)
	}
	if owner := s.dataDirOwner(c.Node.Agent, c.Node.DataDir); owner != "" {
		return conflict("data_dir %s on agent %s is already node %s", c.Node.DataDir, c.Node.Agent, owner)
	}
	if p := sh.Primary(); p != nil && c.Node.Role == RolePrimary {
		return conflict("shard %s/%s already has primary %q", c.Cluster, c.Shard, p.Name)
	}
	if p.check {
		return nil
	}
	n := *c.Node
	n.Tags = append([]string(nil), c.Node.Tags...)
	sort.Strings(n.Tags)
	n.AddedAt = c.At
	sh.Nodes[n.Name] = &n
	s.addEvent(Event{At: c.At, Kind: EventNodeAdded, Cluster: c.Cluster, Shard: c.Shard, Node: n.Name, Message: fmt.Sprintf("node %s (%s:%d, %s) added", n.Name, n.Host, n.Port, n.Role)})
	return nil
}

func applyRemoveNode(s *State, c *RemoveNode, p pass) error {
	sh, err := s.shard(c.Cluster, c.Shard)
	if err != nil {
		return err
	}
	n, ok := sh.Nodes[c.Node]
	if !ok {
		return notFound("node %q does not exist in shard %s/%s", c.Node, c.Cluster, c.Shard)
	}
	if n.Role == RolePrimary && !c.Force {
		return conflict("node %q is the primary of shard %s/%s; switch over first or use force", c.Node, c.Cluster, c.Shard)
	}
	if p.check {
		return nil
	}
	delete(sh.Nodes, c.Node)
	s.addEvent(Event{At: c.At, Kind: EventNodeRemoved, Cluster: c.Cluster, Shard: c.Shard, Node: c.Node, Message: fmt.Sprintf("node %s removed", c.Node)})
	return nil
}
