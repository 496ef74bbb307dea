package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/client"
)

// waitOperation polls an operation until it finishes (or ctx ends) and
// returns it; a failed operation is an error.
func waitOperation(ctx context.Context, c *client.Client, id string) (api.Operation, error) {
	for {
		op, err := c.Operation(ctx, id)
		if err != nil {
			return op, err
		}
		if op.State == "succeeded" {
			return op, nil
		}
		if op.State == "failed" || op.State == "cancelled" {
			return op, fmt.Errorf("operation %s %s: %s", id, op.State, op.Error)
		}
		select {
		case <-ctx.Done():
			return op, fmt.Errorf("operation %s still %s: %w", id, op.State, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func operationTable(w io.Writer, op api.Operation) {
	row(w, "OPERATION", op.ID)
	row(w, "KIND", op.Kind)
	row(w, "STATE", op.State)
	row(w, "TARGET", orDash(op.Target))
	row(w, "REASON", orDash(op.Reason))
	if op.Error != "" {
		row(w, "ERROR", op.Error)
	}
	row(w)
	row(w, "STEP", "STATE", "DETAIL")
	for _, s := range op.Steps {
		row(w, s.Name, s.State, s.Detail)
	}
}

// opCommand builds switchover, failover and rejoin: start, then wait
// unless --no-wait.
func opCommand(o *cliOptions, use, short string, args cobra.PositionalArgs, start func(ctx context.Context, c *client.Client, args []string, to string) (api.OperationRef, error), withTo bool) *cobra.Command {
	var to string
	var noWait bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				ref, err := start(ctx, c, args, to)
				if err != nil {
					return err
				}
				if noWait {
					return o.show(cmd, ref, func(w io.Writer) { row(w, "started", ref.Kind, ref.ID) })
				}
				op, err := waitOperation(ctx, c, ref.ID)
				if showErr := o.show(cmd, op, func(w io.Writer) { operationTable(w, op) }); showErr != nil {
					return showErr
				}
				return err
			})
		},
	}
	if withTo {
		cmd.Flags().StringVar(&to, "to", "", "node to promote")
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "print the operation id and return at once")
	return cmd
}

func newHACmds(o *cliOptions) []*cobra.Command {
	switchover := opCommand(o, "switchover CLUSTER SHARD [--to NODE]", "Hand the primary role to a standby (the best one unless --to)", cobra.ExactArgs(2),
		func(ctx context.Context, c *client.Client, args []string, to string) (api.OperationRef, error) {
			return c.Switchover(ctx, args[0], args[1], to)
		}, true)
	var at string
	runNow := switchover.RunE
	switchover.Use = "switchover CLUSTER SHARD [--to NODE] [--at TIME]"
	switchover.Example = `  clustermgr switchover orders s1 --to pg2
  clustermgr switchover orders s1 --to pg2 --at 2026-12-24T03:00:00Z   # scheduled: clustermgr schedules`
	switchover.RunE = func(cmd *cobra.Command, args []string) error {
		if at == "" {
			return runNow(cmd, args)
		}
		when, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return fmt.Errorf("--at %q is not an RFC 3339 time (2026-12-24T03:00:00Z)", at)
		}
		to, _ := cmd.Flags().GetString("to")
		return o.run(cmd, func(ctx context.Context, c *client.Client) error {
			sc, err := c.ScheduleSwitchover(ctx, args[0], args[1], to, when)
			if err != nil {
				return err
			}
			return o.show(cmd, sc, func(w io.Writer) { schedulesTable(w, []api.Schedule{sc}) })
		})
	}
	switchover.Flags().StringVar(&at, "at", "", "schedule the switchover at this RFC 3339 time instead of now (refused then, and recorded why, if the shard is not healthy)")
	var force, oldGone bool
	failover := opCommand(o, "failover CLUSTER SHARD --to NODE [--force] [--old-primary-gone]", "Promote a standby now, for when automatic failover refuses or is paused", cobra.ExactArgs(2),
		func(ctx context.Context, c *client.Client, args []string, to string) (api.OperationRef, error) {
			if to == "" {
				return api.OperationRef{}, fmt.Errorf("--to is required")
			}
			return c.Failover(ctx, args[0], args[1], to, force, oldGone)
		}, true)
	failover.Flags().BoolVar(&force, "force", false, "promote even a standby that may lack acknowledged commits (behind by more than max_lag_on_failover, or not the synchronous standby)")
	failover.Flags().BoolVar(&oldGone, "old-primary-gone", false, "promote even when the old primary could not be fenced and may still serve a majority of the shard: only when you know its host is down")
	rejoin := opCommand(o, "rejoin CLUSTER SHARD NODE", "Fence, rewind and restart a node as a standby of the primary", cobra.ExactArgs(3),
		func(ctx context.Context, c *client.Client, args []string, _ string) (api.OperationRef, error) {
			return c.Rejoin(ctx, args[0], args[1], args[2])
		}, false)
	reinit := opCommand(o, "reinit CLUSTER SHARD NODE", "Rebuild a broken standby from the primary (stop it, remove its data, copy again)", cobra.ExactArgs(3),
		func(ctx context.Context, c *client.Client, args []string, _ string) (api.OperationRef, error) {
			return c.Reinit(ctx, args[0], args[1], args[2])
		}, false)
	backup := opCommand(o, "backup CLUSTER SHARD", "Take a verified base backup of a shard from its best standby", cobra.ExactArgs(2),
		func(ctx context.Context, c *client.Client, args []string, _ string) (api.OperationRef, error) {
			return c.Backup(ctx, args[0], args[1])
		}, false)
	var restoreReq api.RestoreRequest
	var restoreNode string
	restore := opCommand(o, "restore CLUSTER SHARD --backup ID --node SPEC [--target-time T] [--as-new-shard NAME]",
		"Make a new server from a backup and the shard's WAL archive, recovered to --target-time (default: the archive's end)", cobra.ExactArgs(2),
		func(ctx context.Context, c *client.Client, args []string, _ string) (api.OperationRef, error) {
			if restoreReq.Backup == "" || restoreNode == "" {
				return api.OperationRef{}, fmt.Errorf("--backup and --node are required")
			}
			n, err := parseNodeSpec(restoreNode)
			if err != nil {
				return api.OperationRef{}, err
			}
			req := restoreReq
			req.Node = n
			return c.Restore(ctx, args[0], args[1], req)
		}, false)
	restore.Flags().StringVar(&restoreReq.Backup, "backup", "", "id of the backup (clustermgr backups)")
	restore.Flags().StringVar(&restoreReq.TargetTime, "target-time", "", "RFC 3339 time to recover to")
	restore.Flags().StringVar(&restoreNode, "node", "", "the new server: name=N,host=H,port=P,agent=A,data_dir=D (the backup's agent)")
	restore.Flags().StringVar(&restoreReq.AsNewShard, "as-new-shard", "", "register the restored server as this new shard of the cluster")
	backups := &cobra.Command{
		Use:   "backups CLUSTER SHARD",
		Short: "List a shard's verified backups",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				list, err := c.Backups(ctx, args[0], args[1])
				if err != nil {
					return err
				}
				return o.show(cmd, list, func(w io.Writer) {
					row(w, "ID", "NODE", "AGENT", "SIZE", "START_LSN", "STOP_LSN", "TIMELINE", "CREATED")
					for _, b := range list {
						row(w, b.ID, b.Node, b.Agent, b.SizeBytes, b.StartLSN, b.StopLSN, b.Timeline, b.CreatedAt.UTC().Format(time.RFC3339))
					}
				})
			})
		},
	}
	pause := func(use, short string, on bool) *cobra.Command {
		return &cobra.Command{
			Use:   use + " CLUSTER",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.run(cmd, func(ctx context.Context, c *client.Client) error {
					cl, err := c.PatchCluster(ctx, args[0], api.ClusterPatch{AutoFailover: &on})
					if err != nil {
						return err
					}
					return o.show(cmd, cl, func(w io.Writer) { row(w, "cluster", cl.Name, "auto_failover", cl.AutoFailover) })
				})
			},
		}
	}
	var rolling, onlyPending bool
	restart := opCommand(o, "restart CLUSTER SHARD [NODE] [--rolling] [--only-pending]",
		"Restart a node, or the shard node by node (--rolling: the standbys one at a time, then a switchover)", cobra.RangeArgs(2, 3),
		func(ctx context.Context, c *client.Client, args []string, _ string) (api.OperationRef, error) {
			req := api.RestartRequest{Rolling: rolling, OnlyPending: onlyPending}
			if len(args) == 3 {
				req.Node = args[2]
			}
			switch {
			case req.Node != "" && (rolling || onlyPending):
				return api.OperationRef{}, fmt.Errorf("a node is restarted alone: --rolling and --only-pending are for the whole shard")
			case req.Node == "" && !rolling:
				return api.OperationRef{}, fmt.Errorf("name a NODE, or restart the shard node by node with --rolling")
			}
			return c.Restart(ctx, args[0], args[1], req)
		}, false)
	restart.Flags().BoolVar(&rolling, "rolling", false, "the whole shard: the standbys one at a time, each streaming again before the next, then a switchover that restarts the old primary as a standby")
	restart.Flags().BoolVar(&onlyPending, "only-pending", false, "with --rolling: only the nodes with a parameter pending a restart")
	return []*cobra.Command{switchover, failover, rejoin, reinit, backup, backups, restore, restart,
		pause("pause", "Stop automatic actions on a cluster (manual ones still work)", false),
		pause("resume", "Resume automatic actions on a cluster", true)}
}

func shardStatusTable(w io.Writer, sh api.Shard) {
	row(w, "SHARD", sh.Cluster+"/"+sh.Name)
	row(w, "STATE", orDash(sh.State))
	row(w, "PRIMARY", orDash(sh.Primary))
	row(w, "EPOCH", sh.Epoch)
	row(w, "SYNCHRONOUS", sh.Settings.Synchronous, "set ["+strings.Join(sh.SyncSet, ", ")+"]")
	if sh.Operation != "" {
		row(w, "OPERATION", sh.Operation)
	}
	if len(sh.Settings.Parameters) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(sh.Settings.Parameters)) {
			kv = append(kv, k+"="+sh.Settings.Parameters[k])
		}
		row(w, "PARAMETERS", strings.Join(kv, " "), fmt.Sprintf("version %d", sh.ParamsVersion))
	}
	row(w)
	row(w, "NODE", "ROLE", "HEALTH", "HOST:PORT", "TL", "LSN", "LAG", "SYNC", "FROM", "RESTART", "ERROR")
	for _, n := range sh.Nodes {
		st := n.Status
		if st == nil {
			st = &api.NodeStatus{Health: "-"}
		}
		lsn := st.CurrentLSN
		if st.InRecovery {
			lsn = st.ReceiveLSN
		}
		role := n.Role
		if n.Maintenance {
			role += " (maintenance)"
		}
		row(w, n.Name, role, st.Health, fmt.Sprintf("%s:%d", n.Host, n.Port), st.Timeline, orDash(lsn), st.LagBytes, orDash(st.SyncState), orDash(st.StreamingFrom),
			orDash(strings.Join(st.PendingRestart, ",")), orDash(st.Error))
	}
	if d := sh.LastDecision; d != nil {
		row(w)
		row(w, "DECISION", d.Kind, d.Reason)
		if len(d.Candidates) > 0 {
			row(w, "CANDIDATE", "LSN", "TL", "PRIORITY", "LAG", "VERDICT")
			for _, c := range d.Candidates {
				verdict := "eligible"
				if c.Chosen {
					verdict = "chosen"
				}
				if c.Rejected != "" {
					verdict = "rejected: " + c.Rejected
				}
				row(w, c.Node, orDash(c.LSN), c.Timeline, c.Priority, c.LagBytes, verdict)
			}
		}
	}
}

// followOperation waits for an operation and prints it (or only its
// reference with noWait).
func (o *cliOptions) followOperation(cmd *cobra.Command, ctx context.Context, c *client.Client, ref api.OperationRef, noWait bool) error {
	if noWait {
		return o.show(cmd, ref, func(w io.Writer) { row(w, "started", ref.Kind, ref.ID) })
	}
	op, err := waitOperation(ctx, c, ref.ID)
	if showErr := o.show(cmd, op, func(w io.Writer) { operationTable(w, op) }); showErr != nil {
		return showErr
	}
	return err
}

func schedulesTable(w io.Writer, scs []api.Schedule) {
	row(w, "ID", "SHARD", "TO", "AT", "STATE", "OPERATION", "REASON")
	for _, sc := range scs {
		row(w, sc.ID, sc.Cluster+"/"+sc.Shard, orDash(sc.To), sc.At.Format(time.RFC3339), sc.State, orDash(sc.Operation), orDash(sc.Reason))
	}
}

func newSchedulesCmd(o *cliOptions) *cobra.Command {
	var cluster string
	cmd := &cobra.Command{
		Use:   "schedules",
		Short: "List scheduled switchovers (switchover --at schedules one); cancel one",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				scs, err := c.Schedules(ctx, cluster)
				if err != nil {
					return err
				}
				return o.show(cmd, scs, func(w io.Writer) { schedulesTable(w, scs) })
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "only this cluster's")
	cmd.AddCommand(&cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a scheduled switchover that has not started",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, func(ctx context.Context, c *client.Client) error {
				sc, err := c.CancelSchedule(ctx, args[0])
				if err != nil {
					return err
				}
				return o.show(cmd, sc, func(w io.Writer) { schedulesTable(w, []api.Schedule{sc}) })
			})
		},
	})
	return cmd
}
