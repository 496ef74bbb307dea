package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/client"
)

func newAgentsCmd(o *cliOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "agents", Short: "Register, list and remove host agents (nodes name them; only registered agents get credentials)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the registered agents",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				as, err := c.Agents(ctx)
				if err != nil {
					return err
				}
				return o.show(cmd, as, func(w io.Writer) {
					row(w, "NAME", "URL", "HEALTH", "REGISTERED")
					for _, a := range as {
						row(w, a.Name, a.URL, orDash(a.HealthURL), ts(a.CreatedAt))
					}
				})
			})
		},
	}, newAgentsAddCmd(o), &cobra.Command{
		Use:   "remove NAME",
		Short: "Forget an agent no node or backup uses (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.DeleteAgent(ctx, args[0]); err != nil {
					return err
				}
				return o.done(cmd, "removed agent %s", args[0])
			})
		},
	})
	return cmd
}

func newAgentsAddCmd(o *cliOptions) *cobra.Command {
	var healthURL string
	cmd := &cobra.Command{
		Use:     "add NAME URL",
		Short:   "Register the agent at URL as NAME, or move NAME to URL (admin)",
		Example: `  clustermgr agents add db1 https://db1.example.com:9001 --health-url http://db1.example.com:8008`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				a, err := c.PutAgent(ctx, api.Agent{Name: args[0], URL: args[1], HealthURL: healthURL})
				if err != nil {
					return err
				}
				return o.show(cmd, a, func(w io.Writer) { row(w, "agent", a.Name, a.URL, orDash(a.HealthURL)) })
			})
		},
	}
	cmd.Flags().StringVar(&healthURL, "health-url", "", "where the agent serves its nodes' health checks (its --health-addr, http://host:8008): haproxy-config points its checks there")
	return cmd
}
