package ha

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/clustermgr/clustermgr/pkg/action"
	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/decision"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// Provision starts creating a shard through the nodes' agents. Every node
// and agent is checked first: bad input is an invalid-input error naming
// the node, and nothing is created.
func (m *Manager) Provision(ctx context.Context, cluster, shard string, spec action.ProvisionSpec) (meta.Operation, error) {
	if err := m.awaitLeading(ctx); err != nil {
		return meta.Operation{}, err
	}
	if err := meta.ValidateName("name", shard); err != nil {
		return meta.Operation{}, err
	}
	if len(spec.Nodes) == 0 {
		return meta.Operation{}, &meta.Error{Kind: meta.KindInvalid, Field: "nodes", Msg: "at least one node is required"}
	}
	for i, h := range spec.Allow {
		if err := validAllow(h); err != nil {
			return meta.Operation{}, &meta.Error{Kind: meta.KindInvalid, Field: fmt.Sprintf("allow[%d]", i), Msg: err.Error()}
		}
	}
	var exists, clusterKnown, hasPassword bool
	var owner string
	_ = m.store.View(ctx, meta.Stale, func(st *meta.State) error {
		c, ok := st.Clusters[cluster]
		clusterKnown = ok
		if ok {
			_, exists = c.Shards[shard]
			hasPassword = c.Settings.PGPassword != ""
		}
		for _, cl := range st.Clusters {
			for _, sh := range cl.Shards {
				for _, n := range sh.Nodes {
					for _, want := range spec.Nodes {
						if n.Host == want.Host && n.Port == want.Port {
							owner = fmt.Sprintf("%s:%d is already registered as %s/%s/%s", n.Host, n.Port, cl.Name, sh.Name, n.Name)
						}
					}
				}
			}
		}
		return nil
	})
	switch {
	case !clusterKnown:
		return meta.Operation{}, notFoundf("cluster %q does not exist", cluster)
	case exists:
		return meta.Operation{}, conflictf("shard %q already exists in cluster %q", shard, cluster)
	case !hasPassword:
		return meta.Operation{}, &meta.Error{Kind: meta.KindInvalid, Field: "pg_password",
			Msg: fmt.Sprintf("cluster %s has none: a provisioned server takes TCP connections with scram-sha-256 only; set one first (PATCH /v1/clusters/%s)", cluster, cluster)}
	case owner != "":
		return meta.Operation{}, conflictf("%s", owner)
	}
	names, endpoints, dirs, checked := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, n := range spec.Nodes {
		field := fmt.Sprintf("nodes[%d]", i)
		role := meta.RoleStandby
		if i == 0 {
			role = meta.RolePrimary
		}
		node := meta.Node{Name: n.Name, Host: n.Host, Port: n.Port, Role: role, Agent: n.Agent, DataDir: n.DataDir, Priority: n.Priority, Tags: n.Tags}
		if err := meta.ValidateNode(field, &node); err != nil {
			return meta.Operation{}, err
		}
		if n.Agent == "" {
			return meta.Operation{}, &meta.Error{Kind: meta.KindInvalid, Field: field + ".agent", Msg: "is required to provision a node"}
		}
		if n.DataDir == "" {
			return meta.Operation{}, &meta.Error{Kind: meta.KindInvalid, Field: field + ".data_dir", Msg: "is required to provision a node"}
		}
		ep := fmt.Sprintf("%s:%d", n.Host, n.Port)
		switch {
		case names[n.Name]:
			return meta.Operation{}, conflictf("node name %q appears twice", n.Name)
		case endpoints[ep]:
			return meta.Operation{}, conflictf("%s appears twice", ep)
		case dirs[n.Agent+n.DataDir]:
			return meta.Operation{}, conflictf("data_dir %s appears twice on agent %s", n.DataDir, n.Agent)
		}
		names[n.Name], endpoints[ep], dirs[n.Agent+n.DataDir] = true, true, true
		if !checked[n.Agent] {
			if err := m.checkAgent(ctx, field, n.Agent); err != nil {
				return meta.Operation{}, err
			}
			checked[n.Agent] = true
		}
	}
	body, err := json.Marshal(spec)
	if err != nil {
		return meta.Operation{}, err
	}
	return m.startOperation(ctx, meta.Operation{Kind: action.KindProvision, Cluster: cluster, Shard: shard, Target: spec.Nodes[0].Name,
		Epoch: 1, Spec: body, Reason: fmt.Sprintf("provision shard %s with %d node(s)", shard, len(spec.Nodes))})
}

// checkAgent makes sure the agent answers and accepts the manager's token.
func (m *Manager) checkAgent(ctx context.Context, field, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c := m.agentClient(name)
	if strings.HasPrefix(c.BaseURL, "unregistered-agent://") {
		return &meta.Error{Kind: meta.KindInvalid, Field: field + ".agent", Msg: fmt.Sprintf("agent %q is not registered (POST /v1/agents)", name)}
	}
	url := name + " (" + c.BaseURL + ")"
	_, err := c.Status(ctx, "/")
	var ae *agent.Error
	switch {
	case err == nil:
		return nil
	case asAgentErr(err, &ae) && ae.Status == http.StatusBadRequest:
		return nil // it answered, authenticated, and found no data directory at "/"
	case asAgentErr(err, &ae) && ae.Status == http.StatusUnauthorized:
		return &meta.Error{Kind: meta.KindInvalid, Field: field + ".agent", Msg: fmt.Sprintf("agent %s refuses the manager's agent token", url)}
	case asAgentErr(err, &ae):
		return &meta.Error{Kind: meta.KindInvalid, Field: field + ".agent", Msg: fmt.Sprintf("%s is not a clustermgr agent: %v", url, err)}
	}
	return &meta.Error{Kind: meta.KindInvalid, Field: field + ".agent", Msg: fmt.Sprintf("agent %s is unreachable: %v", url, err)}
}

func asAgentErr(err error, target **agent.Error) bool {
	e, ok := err.(*agent.Error)
	if ok {
		*target = e
	}
	return ok
}

// Cancel asks a running operation to stop at its next step boundary.
func (m *Manager) Cancel(ctx context.Context, id string) (meta.Operation, error) {
	var op meta.Operation
	var found bool
	_ = m.store.View(ctx, meta.Stale, func(st *meta.State) error {
		if o, ok := st.Operations[id]; ok {
			op, found = *o, true
			op.Steps = append([]meta.OperationStep(nil), o.Steps...)
		}
		return nil
	})
	if !found {
		return op, notFoundf("operation %q does not exist", id)
	}
	if op.Finished() {
		return op, conflictf("operation %s has already %s", id, op.State)
	}
	if err := m.store.Apply(ctx, &meta.CancelOperation{ID: id}); err != nil {
		return op, err
	}
	op.CancelRequested = true
	return op, nil
}

// AddNode starts adding a standby copied from the primary.
func (m *Manager) AddNode(ctx context.Context, cluster, shard string, spec action.AddNodeSpec) (meta.Operation, error) {
	s, err := m.idleShard(ctx, cluster, shard)
	if err != nil {
		return meta.Operation{}, err
	}
	n := spec.Node
	node := meta.Node{Name: n.Name, Host: n.Host, Port: n.Port, Role: meta.RoleStandby, Agent: n.Agent, DataDir: n.DataDir, Priority: n.Priority, Tags: n.Tags}
	if err := meta.ValidateNode("", &node); err != nil {
		return meta.Operation{}, err
	}
	if n.Agent == "" || n.DataDir == "" {
		return meta.Operation{}, &meta.Error{Kind: meta.KindInvalid, Field: "agent", Msg: "agent and data_dir are required to provision a node"}
	}
	if s.node(n.Name) != nil {
		return meta.Operation{}, conflictf("node %q already exists in shard %s/%s", n.Name, cluster, shard)
	}
	if s.primary() == nil {
		return meta.Operation{}, conflictf("shard %s/%s has no primary to copy from", cluster, shard)
	}
	if err := m.checkAgent(ctx, "node", n.Agent); err != nil {
		return meta.Operation{}, err
	}
	body, err := json.Marshal(spec)
	if err != nil {
		return meta.Operation{}, err
	}
	return m.startOperation(ctx, meta.Operation{Kind: action.KindAddNode, Cluster: cluster, Shard: shard, Target: n.Name,
		Epoch: s.shard.Epoch, Spec: body, Reason: "add standby " + n.Name})
}

// RemoveNode starts removing a standby that has an agent: stop it, drop
// its slot, remove its data directory when purge is set, unregister it.
func (m *Manager) RemoveNode(ctx context.Context, cluster, shard, node string, purge bool) (meta.Operation, error) {
	s, err := m.idleShard(ctx, cluster, shard)
	if err != nil {
		return meta.Operation{}, err
	}
	n := s.node(node)
	if n == nil {
		return meta.Operation{}, notFoundf("node %q does not exist in shard %s/%s", node, cluster, shard)
	}
	if n.Role == meta.RolePrimary {
		return meta.Operation{}, conflictf("node %q is the primary of shard %s/%s; switch over first", node, cluster, shard)
	}
	body, err := json.Marshal(action.RemoveNodeSpec{Purge: purge})
	if err != nil {
		return meta.Operation{}, err
	}
	reason := "remove standby " + node
	if purge {
		reason += " and its data directory"
	}
	return m.startOperation(ctx, meta.Operation{Kind: action.KindRemoveNode, Cluster: cluster, Shard: shard, Target: node,
		Epoch: s.shard.Epoch, Spec: body, Reason: reason})
}

// Backup starts a verified base backup of the shard, taken from its most
// advanced healthy streaming standby with an agent, or from the primary
// when there is none.
func (m *Manager) Backup(ctx context.Context, cluster, shard string) (meta.Operation, error) {
	s, err := m.idleShard(ctx, cluster, shard)
	if err != nil {
		return meta.Operation{}, err
	}
	c := decision.BackupSource(m.input(s, m.voters()))
	if c.Node == "" {
		return meta.Operation{}, conflictf("shard %s/%s: %s", cluster, shard, c.Reason)
	}
	source := c.Node
	return m.startOperation(ctx, meta.Operation{Kind: action.KindBackup, Cluster: cluster, Shard: shard, Target: source,
		Epoch: s.shard.Epoch, Reason: c.Reason})
}

// Restore starts building a new server from a backup of the shard and its
// WAL archive, recovered to targetTime (RFC 3339, optional).
func (m *Manager) Restore(ctx context.Context, cluster, shard string, spec action.RestoreSpec) (meta.Operation, error) {
	s, err := m.idleShard(ctx, cluster, shard)
	if err != nil {
		return meta.Operation{}, err
	}
	var b *meta.Backup
	_ = m.store.View(ctx, meta.Stale, func(st *meta.State) error {
		if x, ok := st.Backups[spec.Backup]; ok && x.Cluster == cluster && x.Shard == shard {
			bb := *x
			b = &bb
		}
		return nil
	})
	if b == nil {
		return meta.Operation{}, notFoundf("backup %q of shard %s/%s does not exist", spec.Backup, cluster, shard)
	}
	if spec.TargetTime != "" {
		t, err := time.Parse(time.RFC3339Nano, spec.TargetTime)
		if err != nil {
			return meta.Operation{}, &meta.Error{Kind: meta.KindInvalid, Field: "target_time", Msg: fmt.Sprintf("%q is not an RFC 3339 time", spec.TargetTime)}
		}
		if t.Before(b.CreatedAt) {
			return meta.Operation{}, &meta.Error{Kind: meta.KindInvalid, Field: "target_time", Msg: fmt.Sprintf("%s is before backup %s ended (%s)", spec.TargetTime, b.ID, b.CreatedAt.Format(time.RFC3339))}
		}
	}
	n := spec.Node
	node := meta.Node{Name: n.Name, Host: n.Host, Port: n.Port, Role: meta.RolePrimary, Agent: n.Agent, DataDir: n.DataDir}
	if err := meta.ValidateNode("node", &node); err != nil {
		return meta.Operation{}, err
	}
	if n.Agent != b.Agent {
		return meta.Operation{}, &meta.Error{Kind: meta.KindInvalid, Field: "node.agent", Msg: fmt.Sprintf("must be %s, the agent that keeps backup %s", b.Agent, b.ID)}
	}
	if n.DataDir == "" {
		return meta.Operation{}, &meta.Error{Kind: meta.KindInvalid, Field: "node.data_dir", Msg: "is required"}
	}
	if spec.AsNewShard != "" {
		if err := meta.ValidateName("as_new_shard", spec.AsNewShard); err != nil {
			return meta.Operation{}, err
		}
	}
	body, err := json.Marshal(spec)
	if err != nil {
		return meta.Operation{}, err
	}
	return m.startOperation(ctx, meta.Operation{Kind: action.KindRestore, Cluster: cluster, Shard: shard, Target: n.Name,
		Epoch: s.shard.Epoch, Spec: body, Reason: fmt.Sprintf("restore backup %s to %s", b.ID, orEnd(spec.TargetTime))})
}

func orEnd(t string) string {
	if t == "" {
		return "the end of the archive"
	}
	return t
}

// Reinit starts rebuilding a standby from the primary (stop, remove its
// data, copy again); for a standby that cannot be rewound.
func (m *Manager) Reinit(ctx context.Context, cluster, shard, node string) (meta.Operation, error) {
	s, n, err := m.idleAgentStandby(ctx, cluster, shard, node)
	if err != nil {
		return meta.Operation{}, err
	}
	body, err := json.Marshal(action.AddNodeSpec{Node: action.ProvisionNode{Name: n.Name, Host: n.Host, Port: n.Port, Agent: n.Agent,
		DataDir: n.DataDir, Priority: n.Priority, Tags: n.Tags}})
	if err != nil {
		return meta.Operation{}, err
	}
	return m.startOperation(ctx, meta.Operation{Kind: action.KindReinit, Cluster: cluster, Shard: shard, Target: node,
		Epoch: s.shard.Epoch, Spec: body, Reason: "rebuild standby " + node + " from the primary"})
}

// validAllow checks one entry of a provisioned shard's allow list: an IP
// address, a CIDR or a host name.
func validAllow(h string) error {
	if _, _, err := net.ParseCIDR(h); err == nil {
		return nil
	}
	if net.ParseIP(h) != nil {
		return nil
	}
	if err := meta.ValidateHost("allow", h); err != nil {
		return fmt.Errorf("%.100q is not an IP address, CIDR or host name", h)
	}
	return nil
}
