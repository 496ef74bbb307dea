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
					row(w, "NAME", "URL", "REGISTERED")
					for _, a := range as {
						row(w, a.Name, a.URL, ts(a.CreatedAt))
					}
				})
			})
		},
	}, &cobra.Command{
		Use:   "add NAME URL",
		Short: "Register the agent at URL as NAME, or move NAME to URL (admin)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				a, err := c.PutAgent(ctx, api.Agent{Name: args[0], URL: args[1]})
				if err != nil {
					return err
				}
				return o.show(cmd, a, func(w io.Writer) { row(w, "agent", a.Name, a.URL) })
			})
		},
	}, &cobra.Command{
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
