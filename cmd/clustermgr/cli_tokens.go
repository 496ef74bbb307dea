package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/client"
)

func newTokenCmd(o *cliOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Aliases: []string{"tokens"}, Short: "Create, list and revoke API tokens (admin)"}
	var scope string
	create := &cobra.Command{
		Use:   "create NAME --scope read|operate|admin",
		Short: "Make a token and print its secret, shown this once only",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				t, err := c.CreateToken(ctx, api.TokenRequest{Name: args[0], Scope: scope})
				if err != nil {
					return err
				}
				return o.show(cmd, t, func(w io.Writer) {
					row(w, "token", t.Name, "scope", t.Scope)
					fmt.Fprintln(w, t.Secret)
				})
			})
		},
	}
	create.Flags().StringVar(&scope, "scope", "read", "what the token may do: read (GETs), operate (switchover, failover, pause, backup, rejoin, reinit, cancel) or admin (everything)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				toks, err := c.Tokens(ctx)
				if err != nil {
					return err
				}
				return o.show(cmd, toks, func(w io.Writer) {
					row(w, "NAME", "SCOPE", "CREATED", "BY")
					for _, t := range toks {
						row(w, t.Name, t.Scope, ts(t.CreatedAt), orDash(t.CreatedBy))
					}
				})
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token (the last admin token cannot be revoked)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.RevokeToken(ctx, args[0]); err != nil {
					return err
				}
				return o.done(cmd, "revoked token %s", args[0])
			})
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func newAuditCmd(o *cliOptions) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the latest accepted API mutations: who, from where, what, outcome (admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				a, err := c.Audit(ctx, limit)
				if err != nil {
					return err
				}
				return o.show(cmd, a, func(w io.Writer) {
					row(w, "ID", "AT", "TOKEN", "FROM", "REQUEST", "STATUS", "OUTCOME")
					for _, r := range a.Records {
						from := r.Remote
						if r.Via != "" {
							from = r.ForwardedFor + " via " + r.Via
						}
						row(w, r.ID, ts(r.At), r.Token, from, r.Method+" "+r.Path, r.Status, r.Outcome)
					}
					row(w)
					row(w, "requests refused for want of a valid token (this replica):", a.RejectedAuth)
				})
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "how many of the latest records")
	return cmd
}
