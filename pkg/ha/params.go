package ha

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/clustermgr/clustermgr/pkg/action"
	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/pgconf"
)

// ErrUnavailable is a request that cannot be served now: what it needs
// (an agent, a primary) does not answer. The API answers 503.
var ErrUnavailable = errors.New("unavailable")

// CheckParameters has PostgreSQL check the parameters an operator sets
// on a shard before they are recorded: the agent of one of its nodes
// (the primary's first) runs the server binary's own check of names,
// types and ranges. A shard with no agent has its names checked against
// the primary's pg_settings. A parameter reset (nil) is checked by name.
func (m *Manager) CheckParameters(ctx context.Context, cluster, shard string, params map[string]*string) error {
	s, err := m.findShard(ctx, cluster, shard)
	if err != nil {
		return err
	}
	set := map[string]string{}
	for k, v := range params {
		if v != nil {
			set[k] = *v
		}
	}
	if err := pgconf.Validate(set); err != nil {
		var pe *pgconf.Error
		if errors.As(err, &pe) {
			return &meta.Error{Kind: meta.KindInvalid, Field: "parameters." + pe.Key, Msg: pe.Msg}
		}
		return &meta.Error{Kind: meta.KindInvalid, Field: "parameters", Msg: err.Error()}
	}
	if len(set) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var agents []string
	if p := s.primary(); p != nil && p.Agent != "" {
		agents = append(agents, p.Agent)
	}
	for _, n := range s.nodes {
		if n.Agent != "" && (len(agents) == 0 || n.Agent != agents[0]) {
			agents = append(agents, n.Agent)
		}
	}
	var lastErr error
	for _, a := range agents {
		err := m.exec.Agents(a).CheckParameters(ctx, set)
		var ae *agent.Error
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
			return &meta.Error{Kind: meta.KindInvalid, Field: "parameters", Msg: strings.TrimPrefix(ae.Detail, "parameters: ")}
		}
		lastErr = err
	}
	if len(agents) > 0 {
		return fmt.Errorf("%w: no agent of shard %s/%s could check the parameters: %v", ErrUnavailable, cluster, shard, lastErr)
	}
	return m.checkParameterNames(ctx, s, set)
}

// checkParameterNames refuses names the primary's PostgreSQL does not
// know (an extension's class.name is taken as PostgreSQL takes it).
func (m *Manager) checkParameterNames(ctx context.Context, s *shardSnap, set map[string]string) error {
	p := s.primary()
	if p == nil {
		return fmt.Errorf("%w: shard %s/%s has no primary to check the parameters against", ErrUnavailable, s.cluster.Name, s.shard.Name)
	}
	c := s.cluster
	pw, err := m.openPassword(&c)
	if err != nil {
		return err
	}
	c.Settings.PGPassword = pw
	conn, err := action.Connect(ctx, c, *p)
	if err != nil {
		return fmt.Errorf("%w: check the parameters on %s: %v", ErrUnavailable, p.Name, err)
	}
	defer conn.Close(context.Background())
	var names []string
	for k := range set {
		if !strings.Contains(k, ".") {
			names = append(names, strings.ToLower(k))
		}
	}
	sort.Strings(names)
	var unknown []string
	if err := conn.QueryRow(ctx, "SELECT COALESCE(array_agg(n ORDER BY n), '{}') FROM unnest($1::text[]) n WHERE n NOT IN (SELECT name FROM pg_settings)", names).Scan(&unknown); err != nil {
		return fmt.Errorf("%w: check the parameters on %s: %v", ErrUnavailable, p.Name, err)
	}
	if len(unknown) > 0 {
		return &meta.Error{Kind: meta.KindInvalid, Field: "parameters", Msg: "unrecognized configuration parameter " + strings.Join(unknown, ", ")}
	}
	return nil
}
