package action

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/clustermgr/clustermgr/pkg/agent"
	"github.com/clustermgr/clustermgr/pkg/collector"
	"github.com/clustermgr/clustermgr/pkg/decision"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// nodeAgent returns a node of the shard and its agent.
func (x *opContext) nodeAgent(name string) (meta.Node, Agent, error) {
	n, err := x.node(name)
	if err != nil {
		return n, nil, err
	}
	a, err := x.agentOf(n)
	return n, a, err
}

func (x *opContext) agentOf(n meta.Node) (Agent, error) {
	if n.Agent == "" || n.DataDir == "" {
		return nil, fmt.Errorf("node %s has no agent and data_dir registered", n.Name)
	}
	return x.e.Agents(n.Agent), nil
}

// fenceOldPrimary kills the old primary through its agent so that it can
// take no more writes. An unreachable old primary (the usual case after a
// crash) cannot be fenced now; it is rewound when it comes back.
func fenceOldPrimary(ctx context.Context, x *opContext) (string, error) {
	if x.op.From == "" {
		return "no old primary", nil
	}
	n, err := x.node(x.op.From)
	if err != nil {
		return err.Error(), nil
	}
	a, err := x.agentOf(n)
	if err != nil {
		return err.Error() + "; it will be rewound when it comes back", nil
	}
	// An agent that does not answer at once is on a host that is down,
	// frozen or cut off: the fence does not wait for it, but the
	// promotion waits until the server's lease has run out and its agent,
	// if it runs, has fenced it (a cut-off primary may still have
	// clients on its side of the partition), and until enough standbys
	// are seen detached from it. When the lease has already run out (a
	// failure detected more slowly than the lease ends), the standbys
	// are probed while the fence waits for its answer.
	actx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
	defer cancel()
	stopped := make(chan error, 1)
	go func() {
		_, err := a.Stop(actx, n.DataDir, x.op.Epoch, "kill")
		stopped <- err
	}()
	type verdict struct {
		why string
		err error
	}
	var early chan verdict
	var until time.Time
	var standbys []string
	if x.e.FencedBy != nil {
		until, standbys = x.e.FencedBy(n.Agent, n.DataDir)
		if !time.Now().Before(until) {
			early = make(chan verdict, 1)
			go func() {
				why, err := checkDetached(ctx, x, n, standbys)
				early <- verdict{why, err}
			}()
		}
	}
	err = <-stopped
	if err == nil {
		if early != nil {
			<-early // pointed the standbys at the target already: harmless
		}
		return "killed " + n.Name + " through its agent", nil
	}
	detail := fmt.Sprintf("could not fence %s: %v", n.Name, err)
	if x.e.FencedBy == nil {
		return detail + "; it will be rewound when it comes back", nil
	}
	var v verdict
	if early != nil {
		detail += "; its lease had run out"
		v = <-early
	} else {
		d := time.Until(until)
		x.e.Log.Info("waiting for the old primary's lease to run out", "node", n.Name, "until", until.Format(time.RFC3339Nano))
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(d):
		}
		detail += fmt.Sprintf("; waited %v for its lease to run out and its agent to fence it", d.Round(time.Millisecond))
		v.why, v.err = checkDetached(ctx, x, n, standbys)
	}
	if v.err != nil {
		return "", fmt.Errorf("%s; %w", detail, v.err)
	}
	return detail + "; " + v.why + "; it will be rewound when it comes back", nil
}

// checkDetached refuses a promotion while the old primary old, which
// could not be fenced through its agent, may still serve a majority of
// the shard (decision.CheckDetached): it probes the standbys its lease
// counted (the shard's other nodes when this leader renewed none). The
// standbys it counts as detached are then held away from the old primary
// before the promotion (claimDetached), and probed again. A forced manual
// failover only records what it saw.
func checkDetached(ctx context.Context, x *opContext, old meta.Node, standbys []string) (string, error) {
	if standbys == nil {
		for _, name := range sortedNodeNames(x.shard) {
			if name != old.Name {
				standbys = append(standbys, name)
			}
		}
	}
	var others []string
	for _, n := range x.shard.Nodes {
		if n.Name != old.Name {
			others = append(others, fmt.Sprintf("%s:%d", n.Host, n.Port))
		}
	}
	lc := &linkConns{open: map[string]*pgx.Conn{}}
	defer lc.close(x)
	began := time.Now()
	links := probeLinks(ctx, x, lc, standbys)
	probed := time.Now()
	d := decision.CheckDetached(old.Host, old.Port, others, links)
	if !d.OK {
		if failoverForced(x.op) {
			return "forced: " + d.Reason, nil
		}
		return "", &MayStillServeError{d.Reason}
	}
	if err := claimDetached(ctx, x, lc, old, others, d.Detached, links); err != nil {
		if failoverForced(x.op) {
			return "forced: " + err.Error(), nil
		}
		return "", err
	}
	return fmt.Sprintf("%s; pointed them away from it (probe %v, then %v)", d.Reason,
		probed.Sub(began).Round(time.Millisecond), time.Since(probed).Round(time.Millisecond)), nil
}

// probeLinks probes each of standbys (probeLink), concurrently.
func probeLinks(ctx context.Context, x *opContext, lc *linkConns, standbys []string) []decision.StandbyLink {
	links := make([]decision.StandbyLink, len(standbys))
	var wg sync.WaitGroup
	for i, name := range standbys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			links[i] = probeLink(ctx, x, lc, name)
		}()
	}
	wg.Wait()
	return links
}

// claimDetached holds the standbys seen detached from the old primary
// away from it, as a vote in an election is kept: each other standby is
// pointed at the node to promote (it streams from it, and follows it once
// it is promoted), the node to promote at nothing, so that none of them
// reconnects to the old primary (thawed, or a partition healing for it
// alone) and gives it the acknowledgements that would keep it serving.
// Then it probes them again, for up to a second while their WAL
// receivers restart, until enough are still detached.
func claimDetached(ctx context.Context, x *opContext, lc *linkConns, old meta.Node, others, detached []string, links []decision.StandbyLink) error {
	target, err := x.node(x.op.Target)
	if err != nil {
		return err
	}
	failed := map[string]string{} // standby → why it could not be pointed away
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range detached {
		n, ok := x.shard.Nodes[name]
		if !ok {
			failed[name] = "no longer in the shard"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			conninfo := ""
			if name != target.Name {
				conninfo = ConnInfo(x.cluster, target, n.Name)
			}
			conn, err := lc.get(cctx, x, *n)
			if err == nil {
				err = setPrimaryConninfo(cctx, conn, conninfo)
			}
			if err != nil {
				lc.drop(n.Name)
				mu.Lock()
				failed[name] = err.Error()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var claimed []string
	for _, name := range detached {
		if _, bad := failed[name]; !bad {
			claimed = append(claimed, name)
		}
	}
	deadline := time.Now().Add(time.Second)
	for {
		fresh := probeLinks(ctx, x, lc, claimed)
		byName := map[string]decision.StandbyLink{}
		for _, l := range fresh {
			byName[l.Node] = l
		}
		again := make([]decision.StandbyLink, len(links))
		for i, l := range links {
			if f, ok := byName[l.Node]; ok {
				again[i] = f
			} else if why, bad := failed[l.Node]; bad {
				again[i] = decision.StandbyLink{Node: l.Node, Err: "could not be pointed away from the old primary: " + why}
			} else {
				again[i] = l
			}
		}
		d := decision.CheckDetached(old.Host, old.Port, others, again)
		if d.OK {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return &MayStillServeError{"after pointing the detached standbys away from the old primary: " + d.Reason}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// MayStillServeError is a promotion refused because the old primary may
// still serve a majority of the shard.
type MayStillServeError struct{ msg string }

func (e *MayStillServeError) Error() string { return e.msg }

// probeLink reads, within a second, whether standby name still receives
// WAL from the old primary.
func probeLink(ctx context.Context, x *opContext, lc *linkConns, name string) decision.StandbyLink {
	l := decision.StandbyLink{Node: name}
	n, ok := x.shard.Nodes[name]
	if !ok {
		l.Err = "no longer in the shard"
		return l
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := lc.get(ctx, x, *n)
	if err != nil {
		l.Err = err.Error()
		return l
	}
	var status, host *string
	var pid, port *int32
	var sinceMs *float64
	err = conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), r.pid, r.status, r.sender_host, r.sender_port,
	    (EXTRACT(EPOCH FROM now() - r.last_msg_receipt_time) * 1000)::float8
	  FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver r ON true`).Scan(&l.InRecovery, &pid, &status, &host, &port, &sinceMs)
	if err != nil {
		lc.drop(name)
		l.Err = err.Error()
		return l
	}
	if pid != nil && status == nil {
		// A role without pg_read_all_stats sees the row, not its details.
		l.Err = "cannot read its WAL receiver (pg_stat_wal_receiver needs pg_read_all_stats)"
		return l
	}
	if status != nil {
		l.Receiver = *status
	}
	if host != nil {
		l.SenderHost = *host
	}
	if port != nil {
		l.SenderPort = int(*port)
	}
	if sinceMs != nil {
		l.SinceMessage = time.Duration(*sinceMs * float64(time.Millisecond))
	}
	return l
}

// linkConns are the connections of one check of the standbys (probes,
// pointing them away, probes again), one per standby; the one to the node
// to promote is handed to the operation run's connections afterwards, for
// the promotion.
type linkConns struct {
	mu   sync.Mutex
	open map[string]*pgx.Conn
}

func (lc *linkConns) get(ctx context.Context, x *opContext, n meta.Node) (*pgx.Conn, error) {
	lc.mu.Lock()
	conn := lc.open[n.Name]
	lc.mu.Unlock()
	if conn != nil && !conn.IsClosed() {
		return conn, nil
	}
	conn, err := connect(ctx, x.cluster, n)
	if err != nil {
		return nil, err
	}
	lc.mu.Lock()
	lc.open[n.Name] = conn
	lc.mu.Unlock()
	return conn, nil
}

// drop closes a connection that failed.
func (lc *linkConns) drop(name string) {
	lc.mu.Lock()
	conn := lc.open[name]
	delete(lc.open, name)
	lc.mu.Unlock()
	if conn != nil {
		_ = conn.Close(context.Background())
	}
}

// close hands the connection to the node to promote to the run's
// connections and closes the others.
func (lc *linkConns) close(x *opContext) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for name, conn := range lc.open {
		if n, ok := x.shard.Nodes[name]; ok && name == x.op.Target && x.conns != nil && !conn.IsClosed() {
			x.conns.adopt(*n, conn)
			continue
		}
		_ = conn.Close(context.Background())
	}
	lc.open = map[string]*pgx.Conn{}
}

// FailoverSpec is the spec of a manual failover.
type FailoverSpec struct {
	// OldPrimaryGone promotes even when an old primary that could not be
	// fenced may still serve a majority of the shard.
	OldPrimaryGone bool `json:"old_primary_gone,omitempty"`
	// A target on an earlier timeline (FromTimeline) than the old
	// primary's (PrimaryTimeline) gets the primary's timeline history
	// files (History, name → contents) in its pg_wal before it is
	// promoted: PostgreSQL then picks a new timeline past the primary's
	// instead of a second one of a number in use.
	FromTimeline    uint32            `json:"from_timeline,omitempty"`
	PrimaryTimeline uint32            `json:"primary_timeline,omitempty"`
	History         map[string]string `json:"history,omitempty"`
}

// failoverSpec is op's spec, zero when it has none.
func failoverSpec(op *meta.Operation) FailoverSpec {
	var s FailoverSpec
	if len(op.Spec) > 0 {
		_ = json.Unmarshal(op.Spec, &s)
	}
	return s
}

// giveTimelineHistory puts the old primary's timeline history into the
// target's pg_wal when the target is on an earlier timeline, and refuses
// when a timeline between the two has no history file to give: the
// promotion could then reuse its number.
func giveTimelineHistory(ctx context.Context, x *opContext, n meta.Node) error {
	spec := failoverSpec(x.op)
	if spec.PrimaryTimeline <= spec.FromTimeline {
		return nil
	}
	for tl := spec.FromTimeline + 1; tl <= spec.PrimaryTimeline; tl++ {
		if _, ok := spec.History[collector.HistoryFileName(tl)]; !ok {
			return fmt.Errorf("%s is on timeline %d and the old primary on %d, but no history of timeline %d is known: promoting it could start a second timeline %d",
				n.Name, spec.FromTimeline, spec.PrimaryTimeline, tl, tl)
		}
	}
	a, err := x.agentOf(n)
	if err != nil {
		return fmt.Errorf("%s is on timeline %d, before the old primary's %d, and needs that history before its promotion: %w", n.Name, spec.FromTimeline, spec.PrimaryTimeline, err)
	}
	if err := a.InstallTimelineHistory(ctx, n.DataDir, x.op.Epoch, spec.History); err != nil {
		return fmt.Errorf("give %s the history of timelines %d-%d: %w", n.Name, spec.FromTimeline+1, spec.PrimaryTimeline, err)
	}
	return nil
}

// failoverForced reports whether op is a manual failover told that the
// old primary is gone.
func failoverForced(op *meta.Operation) bool {
	if op.Kind != KindManualFailover || len(op.Spec) == 0 {
		return false
	}
	return failoverSpec(op).OldPrimaryGone
}

// promoteTarget promotes the target unless it already left recovery. (The
// checkpoint pg_rewind needs on the new timeline is taken by the agent
// before it rewinds, off the failover's critical path.)
func promoteTarget(ctx context.Context, x *opContext) (string, error) {
	n, err := x.node(x.op.Target)
	if err != nil {
		return "", err
	}
	conn, inRecovery, err := prepareTarget(ctx, x, n)
	if err != nil {
		return "", err
	}
	detail := n.Name + " was already promoted"
	if inRecovery {
		if err := giveTimelineHistory(ctx, x, n); err != nil {
			return "", err
		}
		// pg_promote(true) looks for the end of recovery every 100 ms;
		// polling here ends the write outage sooner.
		if _, err := conn.Exec(ctx, "SELECT pg_promote(false)"); err != nil {
			return "", fmt.Errorf("promote %s: %w", n.Name, err)
		}
		if err := waitPromoted(ctx, conn, time.Minute); err != nil {
			return "", fmt.Errorf("promote %s: %w", n.Name, err)
		}
		// Its new timeline, read at once for the record of the
		// promotion: a failover right after needs it.
		if x.conns != nil {
			x.conns.promoted = readPromoted(ctx, conn)
		}
		detail = "promoted " + n.Name
	}
	declarePrimary(ctx, x, n)
	return detail, nil
}

// declarePrimary tells the new primary's agent that it is the primary of
// the operation's epoch, so that its health check sends a load
// balancer's writes there at once, before the leader's first round that
// renews its lease. A failure is only logged: the lease
// renewal declares it too.
func declarePrimary(ctx context.Context, x *opContext, n meta.Node) {
	if n.Agent == "" || n.DataDir == "" || x.e.Agents == nil {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
	defer cancel()
	err := x.e.Agents(n.Agent).Role(dctx, agent.RoleRequest{DataDir: n.DataDir, Epoch: x.op.Epoch, Node: agent.NodeKey(x.op.Cluster, x.op.Shard, n.Name),
		Role: agent.RolePrimary, Conninfo: NodeConnInfo(x.cluster, n)})
	if err != nil && x.e.Log != nil {
		x.e.Log.Warn("declare the new primary to its agent", "node", n.Name, "err", err)
	}
}

// prepareTarget returns this run's connection to the node to promote and
// whether it is still in recovery; a node in recovery gets its
// promotionSyncNames.
func prepareTarget(ctx context.Context, x *opContext, n meta.Node) (*pgx.Conn, bool, error) {
	conn, err := x.conn(ctx, n)
	if err != nil {
		return nil, false, err
	}
	var inRecovery bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		return nil, false, fmt.Errorf("read recovery state of %s: %w", n.Name, err)
	}
	if inRecovery {
		if err := setPromotionSyncNames(ctx, x.shard, n, conn); err != nil {
			return nil, false, err
		}
	}
	return conn, inRecovery, nil
}

// promotionSyncNames is the synchronous_standby_names a node is promoted
// with. The new primary must not wait for a standby named in its own
// configuration (a former synchronous set, perhaps the dead old primary).
// In synchronous mode it waits for any standby ('*': the pool recorded
// with the promotion) until the leader records one; otherwise it starts
// asynchronous.
func promotionSyncNames(sh meta.Shard) string {
	if m := sh.SyncMode(); m == meta.SyncOn || m == meta.SyncStrict {
		return "*"
	}
	return ""
}

// setPromotionSyncNames gives a standby about to be promoted its
// promotionSyncNames, unless it has them already (a switchover sets them
// before the old primary stops, outside the write outage). A standby
// ignores the setting until it is promoted.
func setPromotionSyncNames(ctx context.Context, sh meta.Shard, n meta.Node, conn *pgx.Conn) error {
	names := promotionSyncNames(sh)
	var cur string
	if err := conn.QueryRow(ctx, "SELECT current_setting('synchronous_standby_names')").Scan(&cur); err != nil {
		return fmt.Errorf("read synchronous_standby_names of %s: %w", n.Name, err)
	}
	if cur == names {
		return nil
	}
	if _, err := conn.Exec(ctx, "ALTER SYSTEM SET synchronous_standby_names = "+quoteLiteral(names)); err != nil {
		return fmt.Errorf("set synchronous_standby_names on %s: %w", n.Name, err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("reload %s: %w", n.Name, err)
	}
	return nil
}

// createSlots gives the new primary the slot of every other node, when the
// shard streams through slots.
func createSlots(ctx context.Context, x *opContext) (string, error) {
	if !x.shard.Settings.ReplicationSlots {
		return "the shard uses no replication slots", nil
	}
	p, err := x.node(x.op.Target)
	if err != nil {
		return "", err
	}
	var names []string
	for _, name := range sortedNodeNames(x.shard) {
		if name != p.Name {
			names = append(names, name)
		}
	}
	if err := ensureSlots(ctx, x.cluster, p, names); err != nil {
		return "", err
	}
	return "slots on " + p.Name + " for [" + strings.Join(names, ", ") + "]", nil
}

// recordPrimary writes the new primary and epoch to Raft.
func recordPrimary(ctx context.Context, x *opContext) (string, error) {
	if p := x.shard.Primary(); p != nil && p.Name == x.op.Target && x.shard.Epoch >= x.op.Epoch {
		renewPromoted(ctx, x)
		return "already recorded", nil
	}
	cmd := &meta.SetPrimary{Cluster: x.op.Cluster, Shard: x.op.Shard, Node: x.op.Target, Epoch: x.op.Epoch,
		Reason: x.op.Kind + " " + x.op.ID}
	cmd.Timeline, cmd.History = promotedTimeline(ctx, x)
	err := x.e.Store.Apply(ctx, cmd)
	if err != nil {
		return "", err
	}
	renewPromoted(ctx, x)
	return fmt.Sprintf("%s is the primary at epoch %d", x.op.Target, x.op.Epoch), nil
}

// renewPromoted grants the primary just recorded its lease at once. Its
// agent may still hold the lease it had as the primary before (a
// switchover back within the lease's time): that one runs out moments
// later, and with the other standbys still being repointed the agent
// would fence the new primary on it before the leader's first round that
// renews it (action.ReplacesPrimary). (A lease that runs out between
// the promotion and this renewal, a few milliseconds, still fences it.)
func renewPromoted(ctx context.Context, x *opContext) {
	if x.e.RenewLease == nil {
		return
	}
	if err := x.e.RenewLease(ctx, x.op.Cluster, x.op.Shard); err != nil && x.e.Log != nil {
		x.e.Log.Warn("renew the lease of the new primary", "node", x.op.Target, "err", err)
	}
}

// promotedTimeline is the promoted target's timeline and timeline
// history files for the record of its promotion: as the promote step read
// them, or read now (a resumed operation); 0 and nil when they cannot be
// read (the record is then the probes' to complete).
func promotedTimeline(ctx context.Context, x *opContext) (uint32, map[string]string) {
	if x.conns != nil && x.conns.promoted != nil {
		return x.conns.promoted.timeline, x.conns.promoted.history
	}
	n, err := x.node(x.op.Target)
	if err != nil {
		return 0, nil
	}
	conn, err := x.conn(ctx, n)
	if err != nil {
		return 0, nil
	}
	if p := readPromoted(ctx, conn); p != nil {
		return p.timeline, p.history
	}
	return 0, nil
}

// readPromoted reads a promoted server's timeline and history files,
// within 2 s; nil when it cannot (or the server is in recovery).
func readPromoted(ctx context.Context, conn *pgx.Conn) *promotedState {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := collector.Collect(ctx, conn, time.Now())
	if err != nil || s.InRecovery {
		return nil
	}
	files := map[string]string{}
	for tl := s.Timeline; tl > 1 && len(files) < meta.MaxHistoryFiles; tl-- {
		name := collector.HistoryFileName(tl)
		if text, ok := s.HistoryFiles[name]; ok && len(text) <= meta.MaxHistoryFileBytes {
			files[name] = text
		}
	}
	if len(files) == 0 {
		files = nil
	}
	return &promotedState{timeline: s.Timeline, history: files}
}

// repointStandbys points every other standby at the new primary. A standby
// that cannot be reached now is left to the repoint and rejoin decisions.
func repointStandbys(ctx context.Context, x *opContext) (string, error) {
	p, err := x.node(x.op.Target)
	if err != nil {
		return "", err
	}
	var done, left []string
	for _, name := range sortedNodeNames(x.shard) {
		n := *x.shard.Nodes[name]
		if n.Name == x.op.Target || n.Name == x.op.From {
			continue
		}
		if err := Repoint(ctx, x.cluster, p, n); err != nil {
			left = append(left, fmt.Sprintf("%s (%v)", n.Name, err))
			continue
		}
		done = append(done, n.Name)
	}
	detail := "repointed [" + strings.Join(done, ", ") + "]"
	if len(left) > 0 {
		detail += "; left for later: " + strings.Join(left, "; ")
	}
	return detail, nil
}

// Repoint sets a standby's primary_conninfo to primary and reloads it.
func Repoint(ctx context.Context, c meta.Cluster, primary, standby meta.Node) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := connect(ctx, c, standby)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return setPrimaryConninfo(ctx, conn, ConnInfo(c, primary, standby.Name))
}

// setPrimaryConninfo points a standby's WAL receiver at conninfo (at
// nothing when empty): PostgreSQL restarts the receiver on the reload.
func setPrimaryConninfo(ctx context.Context, conn *pgx.Conn, conninfo string) error {
	if _, err := conn.Exec(ctx, "ALTER SYSTEM SET primary_conninfo = "+quoteLiteral(conninfo)); err != nil {
		return fmt.Errorf("set primary_conninfo: %w", err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	return nil
}

// checkpointOldPrimary prepares a switchover while the old primary still
// takes writes: a CHECKPOINT there leaves its shutdown checkpoint little to
// write, and the target gets the synchronous_standby_names it will be
// promoted with (and a connection the next steps reuse).
func checkpointOldPrimary(ctx context.Context, x *opContext) (string, error) {
	n, err := x.node(x.op.From)
	if err != nil {
		return "", err
	}
	target, err := x.node(x.op.Target)
	if err != nil {
		return "", err
	}
	tc, _, err := prepareTarget(ctx, x, target)
	if err != nil {
		return "", err
	}
	if err := execOn(ctx, x.cluster, n, "CHECKPOINT"); err != nil {
		// Already stopped by an earlier attempt of this step sequence.
		if a, aerr := x.agentOf(n); aerr == nil {
			if st, serr := a.Status(ctx, n.DataDir); serr == nil && !st.Running {
				return n.Name + " is already stopped", nil
			}
		}
		return "", err
	}
	got, err := awaitTargetStreaming(ctx, x, n, target, tc)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("checkpoint on %s; %s streams, received %s", n.Name, target.Name, got), nil
}

// targetStreamWait bounds how long a switchover waits, before the old
// primary stops, for the target to stream all the old primary has
// flushed.
const targetStreamWait = 10 * time.Second

// awaitTargetStreaming waits until the target's WAL receiver streams and
// has received all the old primary had flushed after its checkpoint. The
// old primary's walsenders send its shutdown checkpoint only to standbys
// that stream as it stops: the stop waits for this, while the samples the
// switchover was accepted on may be a probe interval old (a stream
// broken since then cost a write outage until the catch-up timeout). On
// timeout the step fails with nothing stopped.
func awaitTargetStreaming(ctx context.Context, x *opContext, old, target meta.Node, tc *pgx.Conn) (collector.LSN, error) {
	oc, err := x.conn(ctx, old)
	if err != nil {
		return 0, err
	}
	var flushed string
	if err := oc.QueryRow(ctx, "SELECT pg_current_wal_flush_lsn()::text").Scan(&flushed); err != nil {
		return 0, fmt.Errorf("read the flushed WAL of %s: %w", old.Name, err)
	}
	want, err := collector.ParseLSN(flushed)
	if err != nil {
		return 0, fmt.Errorf("flushed WAL of %s: %w", old.Name, err)
	}
	deadline := time.Now().Add(targetStreamWait)
	for {
		r, err := readReceiver(ctx, tc)
		if err != nil {
			return 0, fmt.Errorf("read the WAL receiver of %s: %w", target.Name, err)
		}
		// From the old primary itself: a cascading standby gets the
		// shutdown checkpoint only through another that may not.
		if r.from(old) && r.received >= want {
			return r.received, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s does not stream all %s has flushed (%s, received %s of %s after %v); %s was not stopped",
				target.Name, old.Name, r.describe(old), r.received, want, targetStreamWait, old.Name)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SwitchoverSpec is what a switchover's steps pass on: the location of
// the old primary's shutdown checkpoint, the last WAL it wrote.
type SwitchoverSpec struct {
	ShutdownCheckpoint string `json:"shutdown_checkpoint,omitempty"`
}

// stopOldPrimary stops the old primary in fast mode: it sends its last WAL
// (the shutdown checkpoint) to the standbys before it exits. The step ends
// as soon as the control file records that checkpoint; the postmaster may
// still be finishing (walsenders, the archiver's last segment), but the
// server takes no write any more, and the target can be promoted once it
// has the checkpoint.
func stopOldPrimary(ctx context.Context, x *opContext) (string, error) {
	n, a, err := x.nodeAgent(x.op.From)
	if err != nil {
		return "", err
	}
	st, err := a.StopUntilCheckpoint(ctx, n.DataDir, x.op.Epoch)
	if err != nil {
		return "", err
	}
	raw, err := json.Marshal(SwitchoverSpec{ShutdownCheckpoint: st.Control.CheckpointLSN})
	if err != nil {
		return "", err
	}
	x.op.Spec = raw
	return fmt.Sprintf("stopped %s; shutdown checkpoint at %s", n.Name, st.Control.CheckpointLSN), nil
}

// shutdownCheckpoint is the old primary's shutdown checkpoint as the stop
// step recorded it, or as its agent reads it (a resumed operation).
func shutdownCheckpoint(ctx context.Context, x *opContext, a Agent, old meta.Node) (collector.LSN, error) {
	var spec SwitchoverSpec
	if len(x.op.Spec) > 0 {
		if err := json.Unmarshal(x.op.Spec, &spec); err != nil {
			return 0, fmt.Errorf("decode switchover spec: %w", err)
		}
	}
	if spec.ShutdownCheckpoint == "" {
		st, err := a.Status(ctx, old.DataDir)
		if err != nil {
			return 0, err
		}
		// Only a clean shutdown's checkpoint is the end of the WAL.
		if st.Control.ClusterState != "shut down" {
			return 0, fmt.Errorf("%s has no shutdown checkpoint (control file %q)", old.Name, st.Control.ClusterState)
		}
		spec.ShutdownCheckpoint = st.Control.CheckpointLSN
	}
	return collector.ParseLSN(spec.ShutdownCheckpoint)
}

// oldPrimaryPoll is how often waitCaughtUp asks whether the old
// primary's postmaster has exited; it waits twice that for the answer (a
// hung agent must not hold the wait past its timeout).
const oldPrimaryPoll = 250 * time.Millisecond

func oldPrimaryStatus(ctx context.Context, a Agent, old meta.Node, within time.Duration) (agent.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	return a.Status(ctx, old.DataDir)
}

// startedAgain says how a rollback's start of the old primary went.
func startedAgain(old string, err error) string {
	if err != nil {
		return fmt.Sprintf("starting %s again failed: %v", old, err)
	}
	return old + " restarted as primary"
}

// waitCaughtUp waits until the target has received the old primary's
// shutdown checkpoint, so that the promotion loses nothing. When the old
// primary's postmaster has exited without sending it, or on timeout, the
// old primary is started again and the switchover fails.
func waitCaughtUp(ctx context.Context, x *opContext) (string, error) {
	old, err := x.node(x.op.From)
	if err != nil {
		return "", err
	}
	target, err := x.node(x.op.Target)
	if err != nil {
		return "", err
	}
	a, err := x.agentOf(old)
	if err != nil {
		return "", err
	}
	want, err := shutdownCheckpoint(ctx, x, a, old)
	if err != nil {
		return "", err
	}
	if x.resumed {
		// A leader that rolled this step back (and started the old
		// primary again) may have lost its term before recording the
		// failure: the old primary then takes writes that the target
		// would receive, and promoting it would make two primaries.
		if st, err := oldPrimaryStatus(ctx, a, old, 5*time.Second); err != nil {
			return "", err
		} else if st.Running && st.Control.ClusterState == "in production" {
			return "", fmt.Errorf("%s runs as a primary again (an earlier attempt of this step rolled back); %s is not promoted", old.Name, target.Name)
		}
	}
	timeout := x.e.CatchUpTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	deadline := time.Now().Add(timeout)
	conn, err := x.conn(ctx, target)
	if err != nil {
		return "", err
	}
	received := func() (collector.LSN, error) {
		var recv string
		if err := conn.QueryRow(ctx, "SELECT COALESCE(pg_last_wal_receive_lsn()::text, '')").Scan(&recv); err != nil {
			return 0, fmt.Errorf("read receive LSN of %s: %w", target.Name, err)
		}
		got, _ := collector.ParseLSN(recv)
		return got, nil
	}
	nextStatus := time.Now().Add(oldPrimaryPoll)
	for {
		got, err := received()
		if err != nil {
			return "", err
		}
		if got > want {
			return fmt.Sprintf("%s received %s, past the shutdown checkpoint %s", target.Name, got, want), nil
		}
		// Once the old primary's postmaster is gone, so are its
		// walsenders: what the target lacks then never comes. The old
		// primary runs again at once rather than at the timeout.
		if time.Now().After(nextStatus) {
			nextStatus = time.Now().Add(oldPrimaryPoll)
			if st, serr := oldPrimaryStatus(ctx, a, old, 2*oldPrimaryPoll); serr == nil && !st.Running {
				if got, err = received(); err != nil {
					return "", err
				}
				if got <= want {
					_, serr = a.Start(ctx, old.DataDir, x.op.Epoch)
					return "", fmt.Errorf("%s has stopped and %s received only %s of its shutdown checkpoint %s, which it can no longer receive; %s",
						old.Name, target.Name, got, want, startedAgain(old.Name, serr))
				}
				continue
			}
		}
		if time.Now().After(deadline) {
			// The stop step may have returned before the postmaster
			// exited: wait for it, then start the old primary again.
			_, serr := a.Stop(ctx, old.DataDir, x.op.Epoch, "fast")
			if serr == nil {
				_, serr = a.Start(ctx, old.DataDir, x.op.Epoch)
			}
			return "", fmt.Errorf("%s received only %s of %s within %v; %s", target.Name, got, want, timeout, startedAgain(old.Name, serr))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// restartOldPrimaryAsStandby configures the cleanly stopped old primary as
// a standby of the new one and starts it.
func restartOldPrimaryAsStandby(ctx context.Context, x *opContext) (string, error) {
	old, err := x.node(x.op.From)
	if err != nil {
		return "", err
	}
	p, err := x.node(x.op.Target)
	if err != nil {
		return "", err
	}
	a, err := x.agentOf(old)
	if err != nil {
		return "", err
	}
	// The stop step returned at the shutdown checkpoint: the postmaster
	// must be gone before the server starts again.
	if _, err := a.Stop(ctx, old.DataDir, x.op.Epoch, "fast"); err != nil {
		return "", err
	}
	if _, err := a.ConfigureStandby(ctx, old.DataDir, x.op.Epoch, ConnInfo(x.cluster, p, old.Name), slotOf(x.shard, old.Name)); err != nil {
		return "", err
	}
	if _, err := a.Start(ctx, old.DataDir, x.op.Epoch); err != nil {
		return "", err
	}
	return old.Name + " runs as a standby of " + p.Name, nil
}

func startNode(ctx context.Context, x *opContext) (string, error) {
	n, a, err := x.nodeAgent(x.op.Target)
	if err != nil {
		return "", err
	}
	if _, err := a.Start(ctx, n.DataDir, x.op.Epoch); err != nil {
		return "", err
	}
	if err := waitReachable(ctx, x.cluster, n, 1500*time.Millisecond); err != nil {
		return "", err
	}
	return "started " + n.Name + " as a standby", nil
}

// waitReachable waits, at most within, until the manager can connect to
// n: a node its agent runs but the manager cannot reach (a network
// between them that drops its port) is not rejoined; the operation fails,
// names the address, and is retried with backoff instead of succeeding at
// every round. A server that answers with an error (starting up, access
// refused) is reachable. The agent started it and waited until it was
// ready, so the wait is short: a rejoin cannot be preempted, and a
// failover that becomes due waits for it.
func waitReachable(ctx context.Context, c meta.Cluster, n meta.Node, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := connect(cctx, c, n)
		cancel()
		var pe *pgconn.PgError
		switch {
		case err == nil:
			_ = conn.Close(context.Background())
			return nil
		case errors.As(err, &pe):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			return fmt.Errorf("%s runs but the manager cannot connect to %s at %s:%d: %w", n.Name, n.Name, n.Host, n.Port, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func sortedNodeNames(sh meta.Shard) []string {
	names := make([]string, 0, len(sh.Nodes))
	for k := range sh.Nodes {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// waitPromoted polls a promoted server every 10 ms until it has left
// recovery, for at most timeout.
func waitPromoted(ctx context.Context, conn *pgx.Conn, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	kicked := time.Now()
	for {
		var inRecovery bool
		if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
			return fmt.Errorf("read recovery state: %w", err)
		}
		if !inRecovery {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still in recovery after %v", timeout)
		}
		// A startup process that saw the promotion while its WAL
		// receiver was still connected (the old primary finishing its
		// shutdown) then waits out wal_retrieve_retry_interval (5 s)
		// before it looks again; a reload wakes it.
		if time.Since(kicked) >= 100*time.Millisecond {
			if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
				return fmt.Errorf("wake the startup process: %w", err)
			}
			kicked = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
