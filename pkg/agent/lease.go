package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/clustermgr/clustermgr/pkg/pgctl"
)

// A primary lease: the manager leader renews it for the declared primary
// of each shard while it sees that primary healthy. When a lease runs out
// (the leader lost the host, the host was cut off, or the agent and the
// server were frozen and have just thawed), a failover may be under way
// elsewhere, unless, with the primary, a majority of the shard's nodes
// still takes its WAL (fencing.ServingAcks): a failover that cannot fence
// the primary through its agent needs the rest of the shard to be
// detached from it (fencing.DetachedNeeded), so a primary whose managers
// are all down keeps serving, and one cut off with a minority stops. The
// agent does not take a standby's last reply for that (a standby cut off
// from this host leaves a recent reply for seconds, stamped by another
// host's clock): at each check it commits a transaction locally and
// needs that many standbys to acknowledge its WAL within the lease's ack
// wait. Otherwise it kills the server, so that it takes no write the new
// primary will not have.

// lease is the lease of one data directory.
type lease struct {
	epoch     uint64
	until     time.Time
	conninfo  string        // the server itself
	ackWithin time.Duration // how long a standby may take to acknowledge
	standbys  []string      // whose acknowledgements count (any physical one when empty)
	acks      int           // how many are needed
	// served is when a check after the lease ran out last found enough
	// standbys taking the primary's WAL: it keeps serving, and its
	// health check answers so for a moment (health.go).
	served time.Time
}

// Lease defaults and bounds.
const (
	leaseCheckInterval = 100 * time.Millisecond
	maxLeaseTTL        = time.Minute
	defaultAckWait     = 300 * time.Millisecond
	// checkBudget bounds connecting to the server and committing; the
	// whole check gives up at checkBudget plus the ack wait. A busy host
	// that takes longer has its primary fenced (an inconclusive check);
	// the failover's wait (ha.fenceSlack) counts with both.
	checkBudget = 500 * time.Millisecond
	maxAckWait  = time.Second
)

// renewLease records or extends the lease of req.DataDir. The lease runs
// from the sender's clock (LeaseFromMillis) when given, never longer than
// its length from now: a renewal that arrives after its lease has ended
// (queued in a frozen agent's socket, delayed in the network) is refused.
func (s *Server) renewLease(_ context.Context, req Request) (Result, error) {
	ttl := time.Duration(req.LeaseMillis) * time.Millisecond
	if ttl <= 0 || ttl > maxLeaseTTL {
		return Result{}, &badRequest{fmt.Sprintf("lease_ms %d is out of range 1-%d", req.LeaseMillis, maxLeaseTTL.Milliseconds())}
	}
	if req.Source == "" {
		return Result{}, &badRequest{"source (the server's own connection string) is required"}
	}
	within := time.Duration(req.ReplyWithinMillis) * time.Millisecond
	if within <= 0 {
		within = defaultAckWait
	}
	within = min(within, maxAckWait)
	if req.LeaseFromMillis < 0 {
		return Result{}, &badRequest{fmt.Sprintf("lease_from_ms %d is not a time", req.LeaseFromMillis)}
	}
	acks := 1
	if req.AcksNeeded != nil {
		acks = *req.AcksNeeded
	}
	if acks < 0 || len(req.Standbys) > 0 && acks > len(req.Standbys) {
		return Result{}, &badRequest{fmt.Sprintf("acks_needed %d is out of range 0-%d (the standbys named)", acks, len(req.Standbys))}
	}
	now := time.Now()
	until := now.Add(ttl)
	if req.LeaseFromMillis > 0 {
		// On this host's monotonic clock: a wall clock stepped back
		// later does not lengthen the lease.
		if u := time.UnixMilli(req.LeaseFromMillis).Add(ttl); u.Before(until) {
			until = now.Add(u.Sub(now))
		}
	}
	if !until.After(now) {
		return Result{}, &badRequest{fmt.Sprintf("lease renewal arrived %v after the lease it grants ended", now.Sub(until).Round(time.Millisecond))}
	}
	// The lease also declares its server the primary of its epoch, for
	// the health checks; a declaration that cannot be made never costs
	// the lease.
	var declared *role
	if req.Node != "" && checkNodeKey(req.Node) == nil && !s.declaredAs(req.DataDir, req.Node, req.Epoch, req.Source) {
		if u, err := connUser(req.Source); err == nil {
			declared = &role{Node: req.Node, Role: RolePrimary, Epoch: req.Epoch, User: u, conninfo: req.Source}
		}
	}
	s.mu.Lock()
	if cur, ok := s.leases[req.DataDir]; !ok || until.After(cur.until) || req.Epoch != cur.epoch {
		s.leases[req.DataDir] = &lease{epoch: req.Epoch, until: until, conninfo: req.Source, ackWithin: within, standbys: append([]string(nil), req.Standbys...), acks: acks}
	}
	s.mu.Unlock()
	if declared != nil {
		if err := s.setRole(req.DataDir, *declared); err != nil {
			s.log.Warn("declare the leased primary for its health checks", "data_dir", req.DataDir, "err", err)
		}
	}
	return Result{Status: Status{DataDir: req.DataDir, Running: true}}, nil
}

// RunLeases enforces the primary leases until ctx ends, and waits for
// the checks it started. The agent's owner runs it beside the HTTP server.
func (s *Server) RunLeases(ctx context.Context) {
	t := time.NewTicker(leaseCheckInterval)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	checking := map[string]bool{}
	var mu sync.Mutex
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.checkLeases(ctx, &wg, &mu, checking)
	}
}

// checkLeases starts a check of every expired lease that has none under
// way: one data directory's slow check does not hold up another's.
func (s *Server) checkLeases(ctx context.Context, wg *sync.WaitGroup, mu *sync.Mutex, checking map[string]bool) {
	now := time.Now()
	s.mu.Lock()
	leases := map[string]lease{}
	for dir, l := range s.leases {
		if now.After(l.until) {
			leases[dir] = *l
		}
	}
	s.mu.Unlock()
	for dir, l := range leases {
		mu.Lock()
		busy := checking[dir]
		checking[dir] = true
		mu.Unlock()
		if busy {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(checking, dir)
				mu.Unlock()
			}()
			s.expire(ctx, dir, l)
		}()
	}
}

// expire decides on one expired lease: a server that is gone or a standby
// needs nothing; a primary that enough standbys still stream from keeps
// serving; any other primary is killed.
func (s *Server) expire(ctx context.Context, dir string, l lease) {
	drop := func() {
		s.mu.Lock()
		if cur, ok := s.leases[dir]; ok && !cur.until.After(l.until) {
			delete(s.leases, dir)
		}
		s.mu.Unlock()
	}
	if _, alive := pgctl.PostmasterPID(dir); !alive {
		drop()
		return
	}
	writable, standbys, err := primaryState(ctx, dir, l)
	switch {
	case err != nil && cannotConnectNow(err):
		// Starting up or shutting down: it takes no write; look again
		// at the next check.
		s.log.Debug("lease expired; server is starting or stopping", "data_dir", dir, "err", err)
		return
	case err != nil:
		// A check that cannot conclude (no answer in time, access
		// refused) is no standby's acknowledgement: a failover that
		// could not reach this agent waits only for the lease and one
		// check.
		s.log.Warn("lease expired and the server could not be checked: fencing it", "data_dir", dir, "err", err)
	case !writable:
		drop()
		return
	case standbys >= l.acks:
		s.mu.Lock()
		if cur, ok := s.leases[dir]; ok && cur.until.Equal(l.until) {
			cur.served = time.Now()
		}
		s.mu.Unlock()
		return
	}
	unlock := s.lock(dir)
	defer unlock()
	s.mu.Lock()
	cur, ok := s.leases[dir]
	renewed := ok && cur.until.After(l.until)
	s.mu.Unlock()
	if renewed {
		return
	}
	s.log.Warn("primary lease expired and too few standbys stream from it: fencing it", "data_dir", dir, "epoch", l.epoch,
		"acknowledged", standbys, "needed", l.acks, "expired", time.Since(l.until).Round(time.Millisecond))
	if err := s.stopServer(ctx, dir, "kill"); err != nil {
		s.log.Error("fence after lease expiry", "data_dir", dir, "err", err)
		return
	}
	drop()
}

// cannotConnectNow reports whether err is PostgreSQL refusing connections
// while it starts or stops (SQLSTATE 57P03).
func cannotConnectNow(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "57P03"
}

// primaryState reads whether the server in dir accepts writes and, if it
// does and the lease needs any, how many of the lease's standbys
// acknowledge WAL it writes now: it commits a transaction
// (synchronous_commit local: in synchronous mode it does not wait for
// the standbys it is asking about) and waits up to ackWithin for the
// lease's number of streaming standbys to have written past it. The server is reached
// through its Unix socket when it has one (a partition between hosts does
// not come between the agent and its own server), else through conninfo.
func primaryState(ctx context.Context, dir string, l lease) (writable bool, standbys int, err error) {
	ctx, cancel := context.WithTimeout(ctx, checkBudget+l.ackWithin)
	defer cancel()
	conn, err := connectLocal(ctx, dir, l.conninfo)
	if err != nil {
		return false, 0, err
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, "SELECT NOT pg_is_in_recovery()").Scan(&writable); err != nil || !writable || l.acks == 0 {
		return writable, 0, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return true, 0, err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = local"); err != nil {
		return true, 0, err
	}
	if _, err := tx.Exec(ctx, "SELECT txid_current()"); err != nil {
		return true, 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return true, 0, err
	}
	var lsn string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_flush_lsn()::text").Scan(&lsn); err != nil {
		return true, 0, err
	}
	deadline := time.Now().Add(l.ackWithin)
	for {
		// Physical walsenders only (a logical one is connected to a
		// database), of the shard's standbys when the lease names them.
		if err := conn.QueryRow(ctx, `SELECT count(DISTINCT r.application_name) FROM pg_stat_replication r JOIN pg_stat_activity a USING (pid)
		  WHERE r.state = 'streaming' AND a.datname IS NULL AND r.write_lsn >= $1::pg_lsn
		    AND (COALESCE(cardinality($2::text[]), 0) = 0 OR r.application_name = ANY($2::text[]))`, lsn, l.standbys).Scan(&standbys); err != nil {
			return true, 0, err
		}
		if standbys >= l.acks || time.Now().After(deadline) {
			return true, standbys, nil
		}
		select {
		case <-ctx.Done():
			return true, 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// connectLocal connects to the server in dir through the Unix socket its
// postmaster.pid names, as conninfo's user; through conninfo when there is
// no socket or it refuses.
func connectLocal(ctx context.Context, dir, conninfo string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(conninfo)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["application_name"] = "clustermgr-agent"
	pgctl.BoundMessages(&cfg.Config)
	if sock, port, ok := pgctl.SocketOf(dir); ok {
		local := cfg.Copy()
		local.Host, local.Port, local.Fallbacks = sock, uint16(port), nil
		local.TLSConfig = nil
		if conn, err := pgx.ConnectConfig(ctx, local); err == nil {
			return conn, nil
		}
	}
	return pgx.ConnectConfig(ctx, cfg)
}
