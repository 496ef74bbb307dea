package action

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/clustermgr/clustermgr/pkg/meta"
)

// KindConfigure writes the shard's PostgreSQL parameters to one node (the
// operation's Target) and reloads it: a routine change, which a failover
// preempts.
const KindConfigure = "configure"

func configurePlan() []step {
	return []step{{"write-parameters", writeParameters}}
}

// writeParameters writes every parameter the shard keeps (ALTER SYSTEM
// SET) and resets the removed ones (ALTER SYSTEM RESET) on the target,
// reloads it, waits until its own session has read the new files, and
// records the version written with the parameters that need a restart
// (pg_settings.pending_restart). Writing the same again is harmless: a
// resumed step starts over.
func writeParameters(ctx context.Context, x *opContext) (string, error) {
	n, err := x.node(x.op.Target)
	if err != nil {
		return "", err
	}
	conn, err := x.conn(ctx, n)
	if err != nil {
		return "", err
	}
	version := x.shard.ParamsVersion
	names := make([]string, 0, len(x.shard.Settings.Parameters))
	for k := range x.shard.Settings.Parameters {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, err := conn.Exec(ctx, "ALTER SYSTEM SET "+quoteParamName(k)+" = "+quoteLiteral(x.shard.Settings.Parameters[k])); err != nil {
			return "", fmt.Errorf("%s: set %s: %w", n.Name, k, err)
		}
	}
	for _, k := range x.shard.ParamsReset {
		if _, err := conn.Exec(ctx, "ALTER SYSTEM RESET "+quoteParamName(k)); err != nil {
			return "", fmt.Errorf("%s: reset %s: %w", n.Name, k, err)
		}
	}
	var loaded time.Time
	if err := conn.QueryRow(ctx, "SELECT pg_conf_load_time()").Scan(&loaded); err != nil {
		return "", fmt.Errorf("%s: %w", n.Name, err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return "", fmt.Errorf("%s: reload: %w", n.Name, err)
	}
	// The reload reaches this session through the postmaster: its
	// pending_restart is right once it has read the files again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var reloaded bool
		if err := conn.QueryRow(ctx, "SELECT pg_conf_load_time() > $1", loaded).Scan(&reloaded); err != nil {
			return "", fmt.Errorf("%s: %w", n.Name, err)
		}
		if reloaded {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s did not reload its configuration within 10 s", n.Name)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	var pending []string
	if err := conn.QueryRow(ctx, "SELECT COALESCE(array_agg(name ORDER BY name), '{}') FROM pg_settings WHERE pending_restart").Scan(&pending); err != nil {
		return "", fmt.Errorf("%s: read pending_restart: %w", n.Name, err)
	}
	if err := x.e.Store.Apply(ctx, &meta.ParamsApplied{Cluster: x.op.Cluster, Shard: x.op.Shard, Node: n.Name, Version: version, Pending: pending}); err != nil {
		return "", err
	}
	detail := fmt.Sprintf("wrote %d parameter(s) and reset %d on %s, reloaded (version %d)", len(names), len(x.shard.ParamsReset), n.Name, version)
	if len(pending) > 0 {
		detail += "; restart pending for " + strings.Join(pending, ", ")
	}
	return detail, nil
}

// quoteParamName quotes a parameter name (a GUC, or class.name) for
// ALTER SYSTEM: each part as an identifier. Names are checked before they
// reach Raft (pgconf.Validate).
func quoteParamName(name string) string {
	parts := strings.Split(strings.ToLower(name), ".")
	for i, p := range parts {
		parts[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
	}
	return strings.Join(parts, ".")
}
