package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/client"
)

func newWebhooksCmd(o *cliOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "webhooks", Short: "Subscribe receivers to events (signed, retried, at least once) (admin)"}
	var kinds []string
	var cluster, secretFile string
	add := &cobra.Command{
		Use:   "add NAME URL --secret-file FILE [--kinds K,...] [--cluster C]",
		Short: "Create or replace a subscription: events are posted to URL as JSON, signed with HMAC-SHA256 of the secret",
		Example: `  clustermgr webhooks add pager https://hooks.example.com/clustermgr --secret-file ./hook.secret --kinds promotion,operation
  clustermgr webhooks deliveries pager`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if secretFile == "" {
				return fmt.Errorf("--secret-file is required (a file holding the secret, 16-512 characters)")
			}
			secret, err := readSecret("--secret-file", secretFile)
			if err != nil {
				return err
			}
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				w, err := c.PutWebhook(ctx, api.WebhookRequest{Name: args[0], URL: args[1], Kinds: kinds, Cluster: cluster, Secret: secret})
				if err != nil {
					return err
				}
				return o.show(cmd, w, func(wr io.Writer) { webhooksTable(wr, []api.Webhook{w}) })
			})
		},
	}
	add.Flags().StringSliceVar(&kinds, "kinds", nil, "event kinds to deliver (promotion, operation, node_health, shard_state, decision, schedule, ...); all when none")
	add.Flags().StringVar(&cluster, "cluster", "", "only this cluster's events")
	add.Flags().StringVar(&secretFile, "secret-file", "", "file whose first line is the signing secret (16-512 characters)")
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the subscriptions (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				ws, err := c.Webhooks(ctx)
				if err != nil {
					return err
				}
				return o.show(cmd, ws, func(w io.Writer) { webhooksTable(w, ws) })
			})
		},
	}, add, &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a subscription",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.DeleteWebhook(ctx, args[0]); err != nil {
					return err
				}
				return o.done(cmd, "removed webhook %s", args[0])
			})
		},
	}, &cobra.Command{
		Use:   "deliveries NAME",
		Short: "The leader's last attempts for a subscription, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				ds, err := c.Deliveries(ctx, args[0])
				if err != nil {
					return err
				}
				return o.show(cmd, ds, func(w io.Writer) {
					row(w, "AT", "EVENT", "KIND", "STATUS", "MS", "ERROR")
					for _, d := range ds {
						row(w, ts(d.At), d.EventID, orDash(d.Kind), d.Status, d.Millis, orDash(d.Error))
					}
				})
			})
		},
	})
	return cmd
}

func webhooksTable(w io.Writer, ws []api.Webhook) {
	row(w, "NAME", "URL", "KINDS", "CLUSTER", "DELIVERED", "LAST_ERROR")
	for _, h := range ws {
		row(w, h.Name, h.URL, orDash(strings.Join(h.Kinds, ",")), orDash(h.Cluster), h.Delivered, orDash(h.LastError))
	}
}
