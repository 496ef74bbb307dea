package action

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/meta"
	"github.com/clustermgr/clustermgr/pkg/pgctl"
)

// Store is what actions need of the replicated store.
type Store interface {
	Apply(ctx context.Context, cmd meta.Command) error
	View(ctx context.Context, c meta.Consistency, fn func(*meta.State) error) error
}

// Agent is the host agent of a node.
type Agent interface {
	Status(ctx context.Context, dataDir string) (agent.Status, error)
	Start(ctx context.Context, dataDir string, epoch uint64) (agent.Status, error)
	Stop(ctx context.Context, dataDir string, epoch uint64, mode string) (agent.Status, error)
	Restart(ctx context.Context, dataDir string, epoch uint64, mode string) (agent.Status, error)
	StopUntilCheckpoint(ctx context.Context, dataDir string, epoch uint64) (agent.Status, error)
	Initdb(ctx context.Context, req agent.Request) (agent.Status, error)
	Basebackup(ctx context.Context, req agent.Request) (agent.Status, error)
	Purge(ctx context.Context, dataDir string, epoch uint64) error
	Backup(ctx context.Context, backupID, source string, epoch uint64) (agent.BackupInfo, error)
	Restore(ctx context.Context, req agent.Request) (agent.RestoreInfo, error)
	Rewind(ctx context.Context, dataDir string, epoch uint64, source, slot string) (agent.Result, error)
	Rebuild(ctx context.Context, dataDir string, epoch uint64, source, slot string) (agent.Result, error)
	ConfigureStandby(ctx context.Context, dataDir string, epoch uint64, conninfo, slot string) (agent.Status, error)
	InstallTimelineHistory(ctx context.Context, dataDir string, epoch uint64, files map[string]string) error
	Lease(ctx context.Context, dataDir string, epoch uint64, conninfo string, ttl, ackWithin time.Duration) error
	LeaseFrom(ctx context.Context, r agent.LeaseRequest) error
	Role(ctx context.Context, r agent.RoleRequest) error
	CheckParameters(ctx context.Context, params map[string]string) error
}

// Operation kinds.
const (
	KindFailover       = "failover"
	KindManualFailover = "manual-failover"
	KindSwitchover     = "switchover"
	KindRejoin         = "rejoin"
	KindProvision      = "provision-shard"
)

// Executor runs operations.
type Executor struct {
	Store Store
	// Password opens a cluster's password, which the state keeps sealed;
	// nil takes it as the state holds it.
	Password func(c *meta.Cluster) (string, error)
	Agents   func(name string) Agent // the registered agent name
	Log      *slog.Logger
	// CatchUpTimeout bounds the wait for a switchover target to receive
	// the old primary's shutdown checkpoint.
	CatchUpTimeout time.Duration
	// Now stamps step times; default time.Now.
	Now func() time.Time
	// NoRebuild fails a rejoin whose pg_rewind failed instead of
	// rebuilding the node from a fresh base backup.
	NoRebuild bool
	// FencedBy, when set, returns when a primary whose agent did not
	// answer a fence has fenced itself at the latest unless enough of the
	// standbys its lease named take its WAL (its lease's end and the
	// agent's check, see ha.leaseBook), and those standbys (nil when not
	// known): a failover promotes no standby before then, nor unless
	// enough of them are seen detached from it (decision.CheckDetached).
	// The leader renews that primary's lease no more before then.
	FencedBy func(agentURL, dataDir string) (time.Time, []string)
	// RenewLease, when set, renews the lease of the shard's primary now
	// (ha.Manager.RenewLease): a restart of the primary in place renews
	// it before and after, so that it does not run out while the
	// standbys reconnect.
	RenewLease func(ctx context.Context, cluster, shard string) error
	// AfterStep, when set, is called after each step is recorded done
	// (tests use it to stop a leader in the middle of an operation).
	AfterStep func(ctx context.Context, op *meta.Operation, step string)
	// BeforeStep, when set, is called with the step's context before each
	// step runs (tests use it to hold an operation inside a step).
	BeforeStep func(ctx context.Context, op *meta.Operation, step string)
}

// step is one idempotent step of a plan.
type step struct {
	name string
	run  func(ctx context.Context, x *opContext) (string, error)
}

// opContext is what a step sees: the operation and the shard as the store
// has it now.
type opContext struct {
	e       *Executor
	op      *meta.Operation
	cluster meta.Cluster
	shard   meta.Shard
	// resumed is set when the step was running under an earlier leader:
	// it may have done part of its work.
	resumed bool
	// conns are the connections of this run of the operation.
	conns *conns
}

// conn returns this run's connection to n (see conns).
func (x *opContext) conn(ctx context.Context, n meta.Node) (*pgx.Conn, error) {
	if x.conns == nil {
		return nil, fmt.Errorf("connect to %s: the step runs outside an operation run", n.Name)
	}
	return x.conns.get(ctx, x.cluster, n)
}

func (x *opContext) node(name string) (meta.Node, error) {
	n, ok := x.shard.Nodes[name]
	if !ok {
		return meta.Node{}, fmt.Errorf("node %s is no longer in shard %s/%s", name, x.op.Cluster, x.op.Shard)
	}
	return *n, nil
}

// plan returns the steps of an operation, and what to undo when it fails.
func (e *Executor) plan(op *meta.Operation) ([]step, func(context.Context, *opContext), error) {
	switch op.Kind {
	case KindFailover, KindManualFailover:
		return []step{
			{"fence-old-primary", fenceOldPrimary},
			{"promote", promoteTarget},
			{"create-slots", createSlots},
			{"record-primary", recordPrimary},
			{"repoint-standbys", repointStandbys},
		}, nil, nil
	case KindSwitchover:
		return switchoverSteps(), nil, nil
	case KindRestart:
		return restartPlan(op)
	case KindRejoin:
		return []step{
			{"fence", fenceNode},
			{"rewind", rewindNode},
			{"start", startNode},
		}, nil, nil
	case KindSyncSet:
		return syncSetPlan(), nil, nil
	case KindRepoint:
		return repointPlan(), nil, nil
	case KindConfigure:
		return configurePlan(), nil, nil
	case KindProvision:
		return provisionPlan(op)
	case KindAddNode:
		return addNodePlan(op)
	case KindRemoveNode:
		return removeNodePlan(op)
	case KindReinit:
		return reinitPlan(op)
	case KindBackup:
		return backupPlan(op)
	case KindRestore:
		return restorePlan(op)
	}
	return nil, nil, fmt.Errorf("unknown operation kind %q", op.Kind)
}

// switchoverSteps are a switchover's steps (also the end of a rolling
// restart).
func switchoverSteps() []step {
	return []step{
		{"checkpoint", checkpointOldPrimary},
		{"stop-old-primary", stopOldPrimary},
		{"wait-target-caught-up", waitCaughtUp},
		{"promote", promoteTarget},
		{"create-slots", createSlots},
		{"record-primary", recordPrimary},
		// The other standbys first: in synchronous mode the new
		// primary's first commits wait for one of them.
		{"repoint-standbys", repointStandbys},
		{"restart-old-primary-as-standby", restartOldPrimaryAsStandby},
		{"await-standbys-streaming", awaitStandbysStreaming},
	}
}

// ReplacesPrimary reports whether op is replacing the shard's primary
// now: while it is, the recorded primary gets no lease renewal and the
// shard's standbys no role declaration. That lasts from the start of a
// failover, or the start of a switchover's stop of the old primary,
// until the new primary is recorded. Before, the old primary takes writes under a lease that
// goes on (a switchover's checkpoint step may wait seconds for the
// target to stream, and a lease run out then made the agent of a primary
// without acknowledging standbys kill it; a rolling restart's standbys
// restart first). After, the new primary takes them, and its lease goes
// on while the standbys are repointed and the old primary restarted: a
// lease granted once at its promotion ran out while no standby streamed
// yet, and its agent killed it.
func ReplacesPrimary(op *meta.Operation) bool {
	began := false
	switch op.Kind {
	case KindFailover, KindManualFailover:
		began = true
	case KindSwitchover, KindRestart:
	default:
		return false
	}
	for _, st := range op.Steps {
		switch {
		case st.Name == "stop-old-primary" && st.State != meta.StepPending:
			began = true
		case st.Name == "record-primary" && (st.State == meta.StepDone || st.State == meta.StepSkipped):
			return false
		}
	}
	return began
}

// matchPlan returns the steps of the plan that op runs: all of them, or
// all but the trailing ones added later (addedLater) when op was
// recorded without them, by an earlier version of the manager whose
// leader began it (managers upgraded one at a time). Any other
// difference is an error.
func matchPlan(op *meta.Operation, steps []step) ([]step, error) {
	if n := len(op.Steps); n < len(steps) && !slices.ContainsFunc(steps[n:], func(st step) bool { return !addedLater(st.name) }) {
		steps = steps[:n]
	}
	if len(op.Steps) != len(steps) {
		return nil, fmt.Errorf("operation has %d steps, plan %q has %d (written by another version)", len(op.Steps), op.Kind, len(steps))
	}
	for i, st := range steps {
		if op.Steps[i].Name != st.name {
			return nil, fmt.Errorf("operation step %d is %s, plan %q has %s (written by another version)", i, op.Steps[i].Name, op.Kind, st.name)
		}
	}
	return steps, nil
}

// addedLater reports whether a step was added at the end of its plans
// after their first version: an operation recorded without it runs
// without it.
func addedLater(name string) bool { return name == "await-standbys-streaming" }

// StepNames returns the steps of an operation, to create it with.
func (e *Executor) StepNames(op *meta.Operation) ([]meta.OperationStep, error) {
	p, _, err := e.plan(op)
	if err != nil {
		return nil, err
	}
	out := make([]meta.OperationStep, len(p))
	for i, s := range p {
		out[i] = meta.OperationStep{Name: s.name, State: meta.StepPending}
	}
	return out, nil
}

// Run executes the steps of op that are not done yet, recording each in
// Raft before and after it runs. It returns when the operation has
// finished (the error says why it failed) or ctx is cancelled (leadership
// lost: the next leader resumes).
func (e *Executor) Run(ctx context.Context, op meta.Operation) error {
	steps, undo, err := e.plan(&op)
	if err != nil {
		return e.finish(ctx, &op, err)
	}
	if steps, err = matchPlan(&op, steps); err != nil {
		return e.finish(ctx, &op, err)
	}
	cs := newConns()
	defer cs.close()
	for i, st := range steps {
		if s := op.Steps[i].State; s == meta.StepDone || s == meta.StepSkipped {
			continue
		}
		if op.CancelRequested {
			if undo != nil {
				undo(ctx, &opContext{e: e, op: &op, conns: cs})
			}
			return e.end(ctx, &op, meta.OpCancelled, "cancelled before step "+st.name)
		}
		resumed := op.Steps[i].State == meta.StepRunning
		if err := e.step(ctx, &op, i, meta.StepRunning, "", nil); err != nil {
			return err
		}
		x := &opContext{e: e, op: &op, resumed: resumed, conns: cs}
		if err := e.load(ctx, x); err != nil {
			return e.finish(ctx, &op, fmt.Errorf("step %s: %w", st.name, err))
		}
		e.Log.Info("operation step", "op", op.ID, "kind", op.Kind, "step", st.name, "target", op.Target)
		if e.BeforeStep != nil {
			e.BeforeStep(ctx, &op, st.name)
		}
		spec := op.Spec
		detail, err := st.run(ctx, x)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if undo != nil {
				undo(ctx, x)
			}
			return e.finish(ctx, &op, fmt.Errorf("step %s: %w", st.name, err))
		}
		var newSpec json.RawMessage
		if !bytes.Equal(op.Spec, spec) {
			newSpec = op.Spec
		}
		op.Progress = 100 * (i + 1) / len(steps)
		if err := e.step(ctx, &op, i, meta.StepDone, detail, newSpec); err != nil {
			return err
		}
		if e.AfterStep != nil {
			e.AfterStep(ctx, &op, st.name)
		}
	}
	return e.finish(ctx, &op, nil)
}

func (e *Executor) load(ctx context.Context, x *opContext) error {
	return e.Store.View(ctx, meta.Stale, func(st *meta.State) error {
		c, ok := st.Clusters[x.op.Cluster]
		if !ok {
			return fmt.Errorf("cluster %s no longer exists", x.op.Cluster)
		}
		pw := c.Settings.PGPassword
		if e.Password != nil {
			var err error
			if pw, err = e.Password(c); err != nil {
				return fmt.Errorf("the password of cluster %s: %w", c.Name, err)
			}
		}
		sh, ok := c.Shards[x.op.Shard]
		x.cluster = *c
		x.cluster.Shards = nil
		x.cluster.Settings.PGPassword = pw
		if !ok && x.op.Kind == KindProvision {
			x.shard = meta.Shard{Name: x.op.Shard, Nodes: map[string]*meta.Node{}}
			return nil
		}
		if !ok {
			return fmt.Errorf("shard %s/%s no longer exists", x.op.Cluster, x.op.Shard)
		}
		x.shard = *sh
		x.shard.Nodes = map[string]*meta.Node{}
		for k, n := range sh.Nodes {
			nn := *n
			x.shard.Nodes[k] = &nn
		}
		return nil
	})
}

// step records step i of op in state, with its detail and a changed
// spec, and reloads op as the store now has it (a cancellation requested
// meanwhile included).
func (e *Executor) step(ctx context.Context, op *meta.Operation, i int, state, detail string, spec json.RawMessage) error {
	cmd := &meta.StepOperation{ID: op.ID, Step: i, Name: op.Steps[i].Name, State: state, Detail: detail, Progress: op.Progress, Spec: spec}
	cmd.At = e.now().UTC()
	if err := e.Store.Apply(ctx, cmd); err != nil {
		return fmt.Errorf("record operation %s step %s %s: %w", op.ID, op.Steps[i].Name, state, err)
	}
	return e.reload(ctx, op)
}

// reload copies the operation from the store into op.
func (e *Executor) reload(ctx context.Context, op *meta.Operation) error {
	return e.Store.View(ctx, meta.Stale, func(st *meta.State) error {
		cur, ok := st.Operations[op.ID]
		if !ok {
			return fmt.Errorf("operation %s is no longer recorded", op.ID)
		}
		*op = *cur
		op.Steps = append([]meta.OperationStep(nil), cur.Steps...)
		return nil
	})
}

// end records op finished in state, with the error that says why.
func (e *Executor) end(ctx context.Context, op *meta.Operation, state, why string) error {
	cmd := &meta.FinishOperation{ID: op.ID, State: state, Error: why}
	cmd.At = e.now().UTC()
	if err := e.Store.Apply(ctx, cmd); err != nil {
		return fmt.Errorf("record operation %s %s: %w", op.ID, state, err)
	}
	return e.reload(ctx, op)
}

func (e *Executor) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// finish ends op: succeeded when err is nil, else failed, its running
// step failing with err.
func (e *Executor) finish(ctx context.Context, op *meta.Operation, err error) error {
	var perr error
	if err != nil {
		perr = e.end(ctx, op, meta.OpFailed, err.Error())
	} else {
		perr = e.end(ctx, op, meta.OpSucceeded, "")
	}
	if perr != nil {
		return errors.Join(err, perr)
	}
	if err != nil {
		e.Log.Warn("operation failed", "op", op.ID, "kind", op.Kind, "err", err)
	} else {
		e.Log.Info("operation succeeded", "op", op.ID, "kind", op.Kind, "target", op.Target)
	}
	return err
}

// connect opens a connection to a node with the cluster's credentials.
// Connect opens a connection to node n of cluster c as the manager's
// user (c holds the opened password).
func Connect(ctx context.Context, c meta.Cluster, n meta.Node) (*pgx.Conn, error) {
	return connect(ctx, c, n)
}

func connect(ctx context.Context, c meta.Cluster, n meta.Node) (*pgx.Conn, error) {
	user := c.Settings.PGUser
	if user == "" {
		user = "postgres"
	}
	cfg, err := pgctl.NodeConnConfig(pgctl.Node{Host: n.Host, Port: n.Port, User: user, Password: c.Settings.PGPassword,
		Database: "postgres", App: "clustermgr", Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s (%s:%d): %w", n.Name, n.Host, n.Port, err)
	}
	return conn, nil
}

// execOn runs statements on a node.
func execOn(ctx context.Context, c meta.Cluster, n meta.Node, stmts ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	conn, err := connect(ctx, c, n)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s on %s: %w", pgctl.Redact(s), n.Name, err)
		}
	}
	return nil
}

// ConnInfo is the primary_conninfo a standby named appName uses to stream
// from primary.
func ConnInfo(c meta.Cluster, primary meta.Node, appName string) string {
	user := c.Settings.ReplicationUser
	if user == "" {
		user = c.Settings.PGUser
	}
	if user == "" {
		user = "postgres"
	}
	s := fmt.Sprintf("host=%s port=%d user=%s application_name=%s connect_timeout=2", primary.Host, primary.Port, user, appName)
	if c.Settings.PGPassword != "" && user == c.Settings.PGUser {
		s += " password=" + quoteConnValue(c.Settings.PGPassword)
	}
	return s
}

// NodeConnInfo is a connection string of the node itself with the
// cluster's credentials (for its agent's checks).
func NodeConnInfo(c meta.Cluster, n meta.Node) string {
	user := c.Settings.PGUser
	if user == "" {
		user = "postgres"
	}
	s := fmt.Sprintf("host=%s port=%d user=%s dbname=postgres connect_timeout=1", quoteConnValue(n.Host), n.Port, quoteConnValue(user))
	if c.Settings.PGPassword != "" {
		s += " password=" + quoteConnValue(c.Settings.PGPassword)
	}
	return s
}

func quoteConnValue(v string) string {
	out := []byte{'\''}
	for i := 0; i < len(v); i++ {
		if v[i] == '\'' || v[i] == '\\' {
			out = append(out, '\\')
		}
		out = append(out, v[i])
	}
	return string(append(out, '\''))
}

// quoteLiteral quotes a string as an SQL literal (for ALTER SYSTEM, which
// takes no parameters).
func quoteLiteral(v string) string {
	out := []byte{'\''}
	for i := 0; i < len(v); i++ {
		if v[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, v[i])
	}
	return string(append(out, '\''))
}
