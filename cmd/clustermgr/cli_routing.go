package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/client"
	"github.com/clustermgr/clustermgr/pkg/routing"
)

func newRoutingCmds(o *cliOptions) []*cobra.Command {
	return []*cobra.Command{newHAProxyConfigCmd(o), newConnectionCmd(o)}
}

func newHAProxyConfigCmd(o *cliOptions) *cobra.Command {
	var opts routing.HAProxyOptions
	cmd := &cobra.Command{
		Use:   "haproxy-config CLUSTER [SHARD]",
		Short: "Print an HAProxy configuration: per shard a write port to the primary and a read port to the replicas",
		Long: `Print an HAProxy (2.2 or later) configuration for a shard, or every shard of a
cluster. Each shard gets a write port (--write-port, then the next two for the
next shard, and so on) whose one server in service is the node whose agent
answers /primary, and the next port for reads, spread over the standbys whose
agents answer /replica (within --max-lag). The checks poll the agents' health
checks (clustermgr agent --health-addr, registered with agents add --health-url).`,
		Example: `  clustermgr haproxy-config demo s1 --write-port 5000 > /etc/haproxy/haproxy.cfg`,
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				var shards []api.Shard
				if len(args) == 2 {
					sh, err := c.GetShard(ctx, args[0], args[1])
					if err != nil {
						return err
					}
					shards = []api.Shard{sh}
				} else {
					cl, err := c.GetCluster(ctx, args[0])
					if err != nil {
						return err
					}
					if len(cl.Shards) == 0 {
						return fmt.Errorf("cluster %s has no shards", args[0])
					}
					shards = cl.Shards
				}
				agents, err := c.Agents(ctx)
				if err != nil {
					return err
				}
				health := map[string]string{}
				for _, a := range agents {
					health[a.Name] = a.HealthURL
				}
				in := make([]routing.HAProxyShard, 0, len(shards))
				for _, sh := range shards {
					in = append(in, routing.HAProxyShard{Shard: sh, Health: health})
				}
				cfg, err := routing.HAProxy(in, opts)
				if err != nil {
					return err
				}
				_, err = io.WriteString(cmd.OutOrStdout(), cfg)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Bind, "bind", "", "address HAProxy listens on (default every address)")
	f.IntVar(&opts.WritePort, "write-port", 5000, "write port of the first shard; its read port is the next one")
	f.StringVar(&opts.MaxLag, "max-lag", "16MB", "a replica lagging more leaves the read port: bytes (16MB) or a duration (10s); \"\" is any lag")
	f.DurationVar(&opts.Interval, "check-interval", time.Second, "how often HAProxy checks a server (a down one four times as often)")
	f.IntVar(&opts.StatsPort, "stats-port", 0, "serve HAProxy's statistics page on this port (0: none)")
	return cmd
}

func newConnectionCmd(o *cliOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "connection CLUSTER SHARD",
		Short:   "Print a shard's libpq connection strings (read-write and read-only)",
		Example: `  psql "$(clustermgr connection demo s1 -o json | jq -r .read_write)"`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				cn, err := c.Connection(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				return o.show(cmd, cn, func(w io.Writer) {
					row(w, "read-write", cn.ReadWrite)
					row(w, "read-only", cn.ReadOnly)
				})
			})
		},
	}
}
