package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/client"
)

// readSecret returns the first line of a file (for passwords kept out of
// the command line and shell history).
func readSecret(flag, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimRight(line, "\r"), nil
}

func newClusterCmd(o *cliOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Create, list, show, change and delete clusters"}

	var create api.ClusterCreate
	var pwFile string
	var autoFailover bool
	createCmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Register a cluster",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			create.Name = args[0]
			if pwFile != "" {
				if create.PGPassword != "" {
					return fmt.Errorf("--pg-password and --pg-password-file exclude each other")
				}
				pw, err := readSecret("--pg-password-file", pwFile)
				if err != nil {
					return err
				}
				create.PGPassword = pw
			}
			create.AutoFailover = &autoFailover
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				cl, err := c.CreateCluster(ctx, create)
				if err != nil {
					return err
				}
				return o.show(cmd, cl, func(w io.Writer) { clusterTable(w, cl) })
			})
		},
	}
	cf := createCmd.Flags()
	cf.StringVar(&create.PGUser, "pg-user", "", "PostgreSQL user the manager connects as")
	cf.StringVar(&create.PGPassword, "pg-password", "", "its password (prefer --pg-password-file)")
	cf.StringVar(&pwFile, "pg-password-file", "", "file whose first line is the password")
	cf.StringVar(&create.ReplicationUser, "replication-user", "", "user the standbys replicate as")
	cf.BoolVar(&autoFailover, "auto-failover", true, "fail over automatically")

	var patch api.ClusterPatch
	var upPwFile string
	updateCmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Change a cluster's settings (only the flags given)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			p := api.ClusterPatch{}
			if f.Changed("pg-user") {
				p.PGUser = patch.PGUser
			}
			if f.Changed("replication-user") {
				p.ReplicationUser = patch.ReplicationUser
			}
			if f.Changed("auto-failover") {
				p.AutoFailover = patch.AutoFailover
			}
			if upPwFile != "" {
				pw, err := readSecret("--pg-password-file", upPwFile)
				if err != nil {
					return err
				}
				p.PGPassword = &pw
			}
			if p == (api.ClusterPatch{}) {
				return fmt.Errorf("nothing to change: give --pg-user, --pg-password-file, --replication-user or --auto-failover")
			}
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				cl, err := c.PatchCluster(ctx, args[0], p)
				if err != nil {
					return err
				}
				return o.show(cmd, cl, func(w io.Writer) { clusterTable(w, cl) })
			})
		},
	}
	patch.PGUser, patch.ReplicationUser, patch.AutoFailover = new(string), new(string), new(bool)
	uf := updateCmd.Flags()
	uf.StringVar(patch.PGUser, "pg-user", "", "PostgreSQL user the manager connects as")
	uf.StringVar(&upPwFile, "pg-password-file", "", "file whose first line is the new password")
	uf.StringVar(patch.ReplicationUser, "replication-user", "", "user the standbys replicate as")
	uf.BoolVar(patch.AutoFailover, "auto-failover", true, "fail over automatically")

	var force bool
	deleteCmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Unregister a cluster (--force also its shards)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.DeleteCluster(ctx, args[0], force); err != nil {
					return err
				}
				return o.done(cmd, "deleted cluster %s", args[0])
			})
		},
	}
	deleteCmd.Flags().BoolVar(&force, "force", false, "also unregister the cluster's shards")

	cmd.AddCommand(createCmd, updateCmd, deleteCmd, &cobra.Command{
		Use:   "list",
		Short: "List clusters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				cls, err := c.ListClusters(ctx)
				if err != nil {
					return err
				}
				return o.show(cmd, cls, func(w io.Writer) {
					row(w, "NAME", "SHARDS", "NODES", "PG_USER", "AUTO_FAILOVER", "CREATED")
					for _, cl := range cls {
						nodes := 0
						for _, s := range cl.Shards {
							nodes += len(s.Nodes)
						}
						row(w, cl.Name, len(cl.Shards), nodes, orDash(cl.PGUser), cl.AutoFailover, ts(cl.CreatedAt))
					}
				})
			})
		},
	}, &cobra.Command{
		Use:   "show NAME",
		Short: "Show a cluster with its shards and nodes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				cl, err := c.GetCluster(ctx, args[0])
				if err != nil {
					return err
				}
				return o.show(cmd, cl, func(w io.Writer) { clusterTable(w, cl) })
			})
		},
	})
	return cmd
}

func clusterTable(w io.Writer, cl api.Cluster) {
	row(w, "CLUSTER", cl.Name)
	row(w, "PG_USER", orDash(cl.PGUser))
	row(w, "PG_PASSWORD", map[bool]string{true: "(set)", false: "(not set)"}[cl.PGPasswordSet])
	row(w, "REPLICATION_USER", orDash(cl.ReplicationUser))
	row(w, "AUTO_FAILOVER", cl.AutoFailover)
	row(w)
	nodesTable(w, cl.Shards...)
}

func nodesTable(w io.Writer, shards ...api.Shard) {
	row(w, "SHARD", "EPOCH", "NODE", "ROLE", "HOST", "PORT", "PRIORITY", "TAGS", "AGENT", "DATA_DIR", "MAINTENANCE")
	for _, s := range shards {
		for _, n := range s.Nodes {
			row(w, s.Name, s.Epoch, n.Name, n.Role, n.Host, n.Port, n.Priority, orDash(strings.Join(n.Tags, ",")), orDash(n.Agent), orDash(n.DataDir), maintenanceCell(n))
		}
	}
}

// parseNodeSpec parses name=pg1,host=h,port=5432,role=primary[,agent=NAME,
// data_dir=/x,priority=1,tags=nofailover].
func parseNodeSpec(spec string) (api.Node, error) {
	var n api.Node
	seen := map[string]bool{}
	for _, kv := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || v == "" {
			return n, fmt.Errorf("--node %q: %q is not key=value", spec, kv)
		}
		if seen[k] && k != "tags" {
			return n, fmt.Errorf("--node %q: %s given twice", spec, k)
		}
		seen[k] = true
		switch k {
		case "name":
			n.Name = v
		case "host":
			n.Host = v
		case "port", "priority":
			i, err := strconv.Atoi(v)
			if err != nil {
				return n, fmt.Errorf("--node %q: %s %q is not a number", spec, k, v)
			}
			if k == "port" {
				n.Port = i
			} else {
				n.Priority = i
			}
		case "role":
			n.Role = v
		case "agent":
			n.Agent = v
		case "data_dir":
			n.DataDir = v
		case "tags":
			n.Tags = append(n.Tags, v)
		default:
			return n, fmt.Errorf("--node %q: unknown key %q (name, host, port, role, agent, data_dir, priority, tags)", spec, k)
		}
	}
	for _, k := range []string{"name", "host", "port"} {
		if !seen[k] {
			return n, fmt.Errorf("--node %q: %s is required", spec, k)
		}
	}
	return n, nil
}

// readNodesFile reads a JSON array of nodes.
func readNodesFile(path string) ([]api.Node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var nodes []api.Node
	if err := dec.Decode(&nodes); err != nil {
		return nil, fmt.Errorf("--file %s: not a JSON array of nodes: %w", path, err)
	}
	return nodes, nil
}

func newShardCmd(o *cliOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "shard", Short: "Create, list, show and delete shards"}
	var specs []string
	var file string
	var provision, noWait bool
	var params []string
	createCmd := &cobra.Command{
		Use:   "create CLUSTER SHARD",
		Short: "Register a shard of existing PostgreSQL nodes",
		Example: `  clustermgr shard create orders s1 \
    --node name=pg1,host=10.0.0.11,port=5432,role=primary \
    --node name=pg2,host=10.0.0.12,port=5432,role=standby,priority=10,tags=nofailover`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.ShardCreate{Name: args[1]}
			if file != "" {
				nodes, err := readNodesFile(file)
				if err != nil {
					return err
				}
				req.Nodes = nodes
			}
			for _, s := range specs {
				n, err := parseNodeSpec(s)
				if err != nil {
					return err
				}
				req.Nodes = append(req.Nodes, n)
			}
			if len(req.Nodes) == 0 {
				return fmt.Errorf("no nodes: give --node (repeatable) or --file")
			}
			if len(params) > 0 && !provision {
				return fmt.Errorf("--param applies only with --provision")
			}
			if provision {
				req.Provision = true
				req.Parameters = map[string]string{}
				for _, p := range params {
					k, v, ok := strings.Cut(p, "=")
					if !ok || k == "" {
						return fmt.Errorf("--param %q is not name=value", p)
					}
					req.Parameters[k] = v
				}
				for i := range req.Nodes {
					req.Nodes[i].Role = ""
				}
				return o.run(cmd, func(ctx context.Context, c *client.Client) error {
					ref, err := c.CreateShardOperation(ctx, args[0], req)
					if err != nil {
						return err
					}
					return o.followOperation(cmd, ctx, c, ref, noWait)
				})
			}
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				sh, err := c.CreateShard(ctx, args[0], req)
				if err != nil {
					return err
				}
				return o.show(cmd, sh, func(w io.Writer) { nodesTable(w, sh) })
			})
		},
	}
	createCmd.Flags().StringArrayVar(&specs, "node", nil, "a node: name=N,host=H,port=P,role=primary|standby[,agent=NAME (registered with clustermgr agents add),data_dir=DIR,priority=N,tags=nofailover] (repeatable)")
	createCmd.Flags().StringVar(&file, "file", "", "JSON file with an array of nodes")
	createCmd.Flags().BoolVar(&provision, "provision", false, "create the nodes through their agents (the first is the primary; role may be left out)")
	createCmd.Flags().StringArrayVar(&params, "param", nil, "PostgreSQL setting name=value of provisioned nodes (repeatable)")
	createCmd.Flags().BoolVar(&noWait, "no-wait", false, "with --provision: print the operation id and return at once")

	var syncMode, schedule string
	var maxLag int64
	var retention int
	var setParams, resetParams []string
	setCmd := &cobra.Command{
		Use:   "set CLUSTER SHARD",
		Short: "Change a shard's settings (--synchronous, --max-lag-on-failover, --backup-schedule, --backup-retention) and PostgreSQL parameters (--param, --reset-param)",
		Example: `  clustermgr shard set orders s1 --param work_mem=64MB --param max_connections=200
  clustermgr shard set orders s1 --reset-param work_mem`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var p api.ShardPatch
			if cmd.Flags().Changed("synchronous") {
				p.Synchronous = &syncMode
			}
			if cmd.Flags().Changed("max-lag-on-failover") {
				p.MaxLagOnFailover = &maxLag
			}
			if cmd.Flags().Changed("backup-schedule") {
				p.BackupSchedule = &schedule
			}
			if cmd.Flags().Changed("backup-retention") {
				p.BackupRetention = &retention
			}
			for _, kv := range setParams {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--param %q is not name=value", kv)
				}
				if p.Parameters == nil {
					p.Parameters = map[string]*string{}
				}
				p.Parameters[k] = &v
			}
			for _, k := range resetParams {
				if _, twice := p.Parameters[k]; twice || k == "" {
					return fmt.Errorf("--reset-param %q: a parameter is set or reset, not both", k)
				}
				if p.Parameters == nil {
					p.Parameters = map[string]*string{}
				}
				p.Parameters[k] = nil
			}
			if p.Synchronous == nil && p.MaxLagOnFailover == nil && p.BackupSchedule == nil && p.BackupRetention == nil && p.Parameters == nil {
				return fmt.Errorf("nothing to change: give --synchronous, --max-lag-on-failover, --backup-schedule, --backup-retention, --param or --reset-param")
			}
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				sh, err := c.PatchShard(ctx, args[0], args[1], p)
				if err != nil {
					return err
				}
				return o.show(cmd, sh, func(w io.Writer) { shardStatusTable(w, sh) })
			})
		},
	}
	setCmd.Flags().StringVar(&syncMode, "synchronous", "off", "synchronous replication: off, on (degrade to async when no standby is healthy) or strict")
	setCmd.Flags().Int64Var(&maxLag, "max-lag-on-failover", 0, "most WAL bytes a failover candidate may be behind the best known position (the primary's last or the most advanced standby's)")
	setCmd.Flags().StringVar(&schedule, "backup-schedule", "", `cron expression of scheduled backups ("0 3 * * *", "@daily"); "" stops them`)
	setCmd.Flags().IntVar(&retention, "backup-retention", 0, "verified backups to keep (the oldest beyond are removed)")
	setCmd.Flags().StringArrayVar(&setParams, "param", nil, "PostgreSQL parameter name=value written on every node and reloaded (repeatable); one that needs a restart shows as pending")
	setCmd.Flags().StringArrayVar(&resetParams, "reset-param", nil, "PostgreSQL parameter to reset on every node (repeatable)")

	cmd.AddCommand(createCmd, setCmd, &cobra.Command{
		Use:   "list CLUSTER",
		Short: "List a cluster's shards",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				shards, err := c.ListShards(ctx, args[0])
				if err != nil {
					return err
				}
				return o.show(cmd, shards, func(w io.Writer) {
					row(w, "SHARD", "EPOCH", "PRIMARY", "NODES", "CREATED")
					for _, s := range shards {
						row(w, s.Name, s.Epoch, orDash(s.Primary), len(s.Nodes), ts(s.CreatedAt))
					}
				})
			})
		},
	}, &cobra.Command{
		Use:   "show CLUSTER SHARD",
		Short: "Show a shard and its nodes",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				sh, err := c.GetShard(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				return o.show(cmd, sh, func(w io.Writer) { shardStatusTable(w, sh) })
			})
		},
	}, &cobra.Command{
		Use:   "delete CLUSTER SHARD",
		Short: "Unregister a shard and its nodes",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.DeleteShard(ctx, args[0], args[1]); err != nil {
					return err
				}
				return o.done(cmd, "deleted shard %s/%s", args[0], args[1])
			})
		},
	})
	return cmd
}

func newNodeCmd(o *cliOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Add and remove nodes of a shard"}
	var n api.Node
	var tags []string
	var addProvision, addNoWait bool
	addCmd := &cobra.Command{
		Use:   "add CLUSTER SHARD",
		Short: "Register an existing PostgreSQL node in a shard",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			required := []string{"name", "host", "port", "role"}
			if addProvision {
				required = []string{"name", "host", "port", "agent", "data-dir"}
			}
			for _, f := range required {
				if !cmd.Flags().Changed(f) {
					return fmt.Errorf("--%s is required", f)
				}
			}
			n.Tags = tags
			if addProvision {
				return o.run(cmd, func(ctx context.Context, c *client.Client) error {
					ref, err := c.AddNodeOperation(ctx, args[0], args[1], api.NodeAdd{Node: n, Provision: true})
					if err != nil {
						return err
					}
					return o.followOperation(cmd, ctx, c, ref, addNoWait)
				})
			}
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				sh, err := c.AddNode(ctx, args[0], args[1], n)
				if err != nil {
					return err
				}
				return o.show(cmd, sh, func(w io.Writer) { nodesTable(w, sh) })
			})
		},
	}
	f := addCmd.Flags()
	f.StringVar(&n.Name, "name", "", "node name")
	f.StringVar(&n.Host, "host", "", "host name or IP address")
	f.IntVar(&n.Port, "port", 0, "PostgreSQL port")
	f.StringVar(&n.Role, "role", "", "primary or standby")
	f.StringVar(&n.Agent, "agent", "", "name of the registered host agent (clustermgr agents add)")
	f.StringVar(&n.DataDir, "data-dir", "", "PostgreSQL data directory")
	f.IntVar(&n.Priority, "priority", 0, "failover priority 0-1000")
	f.StringArrayVar(&tags, "tag", nil, "tag (repeatable): nofailover")
	f.BoolVar(&addProvision, "provision", false, "create the node through its agent as a copy of the primary (needs --agent and --data-dir)")
	f.BoolVar(&addNoWait, "no-wait", false, "with --provision: print the operation id and return at once")

	var force, purge bool
	removeCmd := &cobra.Command{
		Use:   "remove CLUSTER SHARD NODE",
		Short: "Remove a node: a standby with an agent is stopped and its slot dropped (--purge also deletes its data); --force only unregisters",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				ref, err := c.RemoveNodeOperation(ctx, args[0], args[1], args[2], force, purge)
				if err != nil {
					return err
				}
				if ref.ID != "" {
					return o.followOperation(cmd, ctx, c, ref, false)
				}
				return o.done(cmd, "removed node %s from %s/%s", args[2], args[0], args[1])
			})
		},
	}
	removeCmd.Flags().BoolVar(&force, "force", false, "only unregister the node (also the primary)")
	removeCmd.Flags().BoolVar(&purge, "purge", false, "also delete the node's data directory")
	var off bool
	var reason string
	maintCmd := &cobra.Command{
		Use:   "maintenance CLUSTER SHARD NODE [--reason R] [--off]",
		Short: "Put a standby in maintenance (no failover, switchover, synchronous set, rejoin or parameters for it), or take it out with --off",
		Example: `  clustermgr node maintenance orders s1 pg3 --reason "kernel update"
  clustermgr node maintenance orders s1 pg3 --off`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if off && reason != "" {
				return fmt.Errorf("--reason is for entering maintenance, not --off")
			}
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				sh, err := c.Maintenance(ctx, args[0], args[1], args[2], !off, reason)
				if err != nil {
					return err
				}
				return o.show(cmd, sh, func(w io.Writer) { nodesTable(w, sh) })
			})
		},
	}
	maintCmd.Flags().BoolVar(&off, "off", false, "take the node out of maintenance")
	maintCmd.Flags().StringVar(&reason, "reason", "", "why (shown with the node and in the event)")
	cmd.AddCommand(addCmd, removeCmd, maintCmd)
	return cmd
}

// maintenanceCell shows whether a node is in maintenance, and why.
func maintenanceCell(n api.Node) string {
	switch {
	case !n.Maintenance:
		return "-"
	case n.MaintenanceReason != "":
		return "yes: " + n.MaintenanceReason
	}
	return "yes"
}
