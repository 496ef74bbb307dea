package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Roles: what the manager leader has declared each data directory to be,
// for the health checks a load balancer polls (health.go). The leader
// declares a node primary when it promotes it and with every renewal of
// its lease, and tells every standby whether it is synchronous. A
// declaration carries the shard epoch; a command of a newer epoch (a
// fence, a rejoin) outdates it. The declarations outlive a restart of the
// agent (roles.json beside epochs.json), without the connection string's
// password: a restarted agent reaches a provisioned server through its
// Unix socket as the user alone (peer), until the leader tells it again.

// Node roles a manager declares.
const (
	RolePrimary = "primary"
	RoleStandby = "standby"
)

// role is one data directory's declared role.
type role struct {
	Node  string `json:"node"` // cluster.shard.node
	Role  string `json:"role"`
	Sync  bool   `json:"sync,omitempty"`
	Epoch uint64 `json:"epoch"`
	// Maintenance takes a standby out of the read pools.
	Maintenance bool   `json:"maintenance,omitempty"`
	User        string `json:"user,omitempty"`
	// conninfo reaches the server (with its password): memory only.
	conninfo string
}

// NodeKey is the name under which an agent knows a node: cluster.shard.node
// (names are [a-z0-9-], so the dots are unambiguous). The HAProxy
// configuration names its servers so.
func NodeKey(cluster, shard, node string) string {
	return cluster + "." + shard + "." + node
}

// setRole records dir's role; the file is written only when what it
// keeps changed (a lease renewal every few hundred milliseconds writes
// nothing).
func (s *Server) setRole(dir string, r role) error {
	s.mu.Lock()
	cur, ok := s.roles[dir]
	if ok {
		if r.Epoch < cur.Epoch {
			s.mu.Unlock()
			return nil // an older declaration arriving late
		}
		if r.conninfo == "" {
			r.conninfo = cur.conninfo
		}
	}
	s.roles[dir] = r
	s.mu.Unlock()
	if ok && cur.Node == r.Node && cur.Role == r.Role && cur.Sync == r.Sync && cur.Epoch == r.Epoch && cur.Maintenance == r.Maintenance && cur.User == r.User {
		return nil
	}
	return s.saveRoles()
}

// declaredAs reports whether dir is declared primary already as a lease
// renewal would declare it: the renewals, every few hundred
// milliseconds, then parse nothing and write nothing.
func (s *Server) declaredAs(dir, node string, epoch uint64, conninfo string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.roles[dir]
	return ok && cur.Role == RolePrimary && cur.Node == node && cur.Epoch == epoch && cur.conninfo == conninfo && !cur.Sync && !cur.Maintenance
}

// declareRole is POST /v1/agent/role: the leader declares a node primary
// (after promoting it) or standby.
func (s *Server) declareRole(_ context.Context, req Request) (Result, error) {
	if err := checkNodeKey(req.Node); err != nil {
		return Result{}, err
	}
	if req.Role != RolePrimary && req.Role != RoleStandby {
		return Result{}, &badRequest{fmt.Sprintf("role %q is not primary or standby", req.Role)}
	}
	if req.Role == RolePrimary && (req.Sync || req.Maintenance) {
		return Result{}, &badRequest{"sync and maintenance are for a standby"}
	}
	r := role{Node: req.Node, Role: req.Role, Sync: req.Sync, Maintenance: req.Maintenance, Epoch: req.Epoch, conninfo: req.Source}
	if req.Source != "" {
		u, err := connUser(req.Source)
		if err != nil {
			return Result{}, &badRequest{"source: " + err.Error()}
		}
		r.User = u
	}
	if err := s.setRole(req.DataDir, r); err != nil {
		return Result{}, err
	}
	return Result{Status: Status{DataDir: req.DataDir}}, nil
}

func checkNodeKey(k string) error {
	parts := strings.Split(k, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" || len(k) > 200 {
		return &badRequest{fmt.Sprintf("node %.100q is not cluster.shard.node", k)}
	}
	return nil
}

// connUser is the user of a libpq connection string.
func connUser(conninfo string) (string, error) {
	cfg, err := pgx.ParseConfig(conninfo)
	if err != nil {
		return "", err
	}
	return cfg.User, nil
}

func (s *Server) roleFile() string {
	if p := s.epochFile(); p != "" {
		return filepath.Join(filepath.Dir(p), "roles.json")
	}
	return ""
}

// loadRoles reads the persisted declarations; a missing file is none.
func (s *Server) loadRoles() error {
	path := s.roleFile()
	data, err := readOwnFile(path)
	if err != nil || data == nil {
		return err
	}
	if err := json.Unmarshal(data, &s.roles); err != nil {
		return fmt.Errorf("read declared roles %s: %w", path, err)
	}
	return nil
}

// saveRoles writes the declarations as they are now, atomically. It
// does not hold s.mu while it syncs the file: every command's fencing
// check takes s.mu, and a fence must not wait for a declaration's fsync.
// Writers queue on rolesMu; each writes the latest declarations.
func (s *Server) saveRoles() error {
	path := s.roleFile()
	if path == "" {
		return nil
	}
	s.rolesMu.Lock()
	defer s.rolesMu.Unlock()
	s.mu.Lock()
	data, err := json.Marshal(s.roles)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.roots[0], 0o755); err != nil {
		return fmt.Errorf("save declared roles: %w", err)
	}
	if err := writeAtomic(path, data); err != nil {
		return fmt.Errorf("save declared roles: %w", err)
	}
	return nil
}

// roleOf returns the data directory known under node (a full
// cluster.shard.node key, or a node name that only one declaration has),
// or with node empty the only one this agent knows; and its declaration.
func (s *Server) roleOf(node string) (string, role, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var dirs []string
	for dir, r := range s.roles {
		if node == "" || r.Node == node || strings.HasSuffix(r.Node, "."+node) {
			dirs = append(dirs, dir)
		}
	}
	switch {
	case len(dirs) == 1:
		return dirs[0], s.roles[dirs[0]], nil
	case len(dirs) == 0 && node == "":
		return "", role{}, fmt.Errorf("no manager has declared a node to this agent yet")
	case len(dirs) == 0:
		return "", role{}, fmt.Errorf("no node %q is known to this agent", node)
	}
	var names []string
	for _, d := range dirs {
		names = append(names, s.roles[d].Node)
	}
	sort.Strings(names)
	return "", role{}, fmt.Errorf("this agent serves several nodes (%s): name one with ?node=", strings.Join(names, ", "))
}
