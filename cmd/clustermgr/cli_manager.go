package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/client"
)

func newStatusCmd(o *cliOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the manager group: this replica, the leader, term, indexes and members",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				m, err := c.Manager(ctx)
				if err != nil {
					return err
				}
				return o.show(cmd, m, func(w io.Writer) {
					row(w, "REPLICA", m.NodeID)
					row(w, "STATE", m.State)
					row(w, "LEADER", orDash(m.LeaderID)+" "+m.LeaderAPIAddr)
					row(w, "TERM", m.Term)
					row(w, "COMMIT/APPLIED", m.CommitIndex, "/", m.AppliedIndex)
					row(w)
					membersTable(w, m.Members)
				})
			})
		},
	}
}

func membersTable(w io.Writer, ms []api.Member) {
	row(w, "ID", "RAFT", "API", "VOTER", "LEADER")
	for _, m := range ms {
		row(w, m.ID, m.RaftAddr, orDash(m.APIAddr), m.Voter, m.Leader)
	}
}

func newMembersCmd(o *cliOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "members", Short: "List, join and remove manager replicas"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the replicas of the group",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				m, err := c.Manager(ctx)
				if err != nil {
					return err
				}
				return o.show(cmd, m.Members, func(w io.Writer) { membersTable(w, m.Members) })
			})
		},
	}, &cobra.Command{
		Use:   "join ID RAFT_ADDR API_URL",
		Short: "Add a replica (started without peers) to the group",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				m, err := c.JoinMember(ctx, api.JoinRequest{ID: args[0], RaftAddr: args[1], APIAddr: args[2]})
				if err != nil {
					return err
				}
				return o.show(cmd, m, func(w io.Writer) { row(w, "joined", m.ID, m.RaftAddr, m.APIAddr) })
			})
		},
	}, &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a replica from the group",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				if err := c.RemoveMember(ctx, args[0]); err != nil {
					return err
				}
				return o.done(cmd, "removed %s", args[0])
			})
		},
	})
	var to string
	transfer := &cobra.Command{
		Use:   "transfer-leadership",
		Short: "Hand leadership to another replica (--to, or the most up-to-date one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				r, err := c.TransferLeadership(ctx, to)
				if err != nil {
					return err
				}
				return o.show(cmd, r, func(w io.Writer) { row(w, "leadership", r.From, "->", orDash(r.To)) })
			})
		},
	}
	transfer.Flags().StringVar(&to, "to", "", "id of the replica to lead")
	cmd.AddCommand(transfer)
	return cmd
}

func newEventsCmd(o *cliOptions) *cobra.Command {
	var f client.EventFilter
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Show the event history (oldest first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				evs, err := c.Events(ctx, f)
				if err != nil {
					return err
				}
				return o.show(cmd, evs, func(w io.Writer) {
					row(w, "ID", "AT", "KIND", "CLUSTER", "SHARD", "NODE", "MESSAGE")
					for _, e := range evs {
						row(w, e.ID, ts(e.At), e.Kind, orDash(e.Cluster), orDash(e.Shard), orDash(e.Node), e.Message)
					}
				})
			})
		},
	}
	cmd.Flags().StringVar(&f.Cluster, "cluster", "", "only events of this cluster")
	cmd.Flags().StringVar(&f.Since, "since", "", "only events after this event id, or at or after this RFC 3339 time")
	cmd.Flags().IntVar(&f.Limit, "limit", 0, "at most this many events (server default 100)")
	return cmd
}

func newOperationsCmd(o *cliOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "operations", Short: "List and show asynchronous operations"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List operations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				ops, err := c.Operations(ctx)
				if err != nil {
					return err
				}
				return o.show(cmd, ops, func(w io.Writer) {
					row(w, "ID", "KIND", "CLUSTER", "SHARD", "STATE", "UPDATED")
					for _, op := range ops {
						row(w, op.ID, op.Kind, orDash(op.Cluster), orDash(op.Shard), op.State, ts(op.UpdatedAt))
					}
				})
			})
		},
	}, &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a running operation at its next step boundary",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				ref, err := c.CancelOperation(ctx, args[0])
				if err != nil {
					return err
				}
				return o.done(cmd, "cancellation of %s requested", ref.ID)
			})
		},
	}, &cobra.Command{
		Use:   "wait ID",
		Short: "Wait until an operation ends (within --timeout) and show it; fails unless it succeeded",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				op, err := waitOperation(ctx, c, args[0])
				if showErr := o.show(cmd, op, func(w io.Writer) { operationTable(w, op) }); showErr != nil {
					return showErr
				}
				return err
			})
		},
	}, &cobra.Command{
		Use:   "show ID",
		Short: "Show an operation with its steps",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				op, err := c.Operation(ctx, args[0])
				if err != nil {
					return err
				}
				return o.show(cmd, op, func(w io.Writer) {
					row(w, "ID", op.ID)
					row(w, "KIND", op.Kind)
					row(w, "STATE", op.State)
					row(w, "PROGRESS", fmt.Sprintf("%d%%", op.Progress))
					row(w, "ERROR", orDash(op.Error))
					row(w)
					row(w, "STEP", "STATE", "AT", "DETAIL")
					for _, s := range op.Steps {
						row(w, s.Name, s.State, ts(s.At), s.Detail)
					}
				})
			})
		},
	})
	return cmd
}

func newWhoamiCmd(o *cliOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show the name and scope of the token in use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				w, err := c.Whoami(ctx)
				if err != nil {
					return err
				}
				return o.show(cmd, w, func(tw io.Writer) { row(tw, "TOKEN", w.Token); row(tw, "SCOPE", w.Scope) })
			})
		},
	}
}
