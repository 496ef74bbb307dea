package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clustermgr/clustermgr/pkg/pgctl"
)

// A primary lease: the manager leader renews it for the declared primary
// of each shard while it sees that primary healthy. When a lease runs out
// (the leader lost the host, the host was cut off, or the agent and the
// server were frozen and have just thawed) and no standby has replied to
// the primary within ReplyWithin, a failover may be under way elsewhere:
// the agent kills the server so that it takes no write the new primary
// will not have. While a standby still streams from it no failover can
// happen (the managers refuse one), so a primary whose managers are all
// down keeps serving.

// lease is the lease of one data directory.
type lease struct {
	epoch       uint64
	until       time.Time
	conninfo    string        // the server itself
	replyWithin time.Duration // a standby that replied within this is alive
}

// Lease defaults and bounds.
const (
	leaseCheckInterval = 100 * time.Millisecond
	maxLeaseTTL        = time.Minute
)

// renewLease records or extends the lease of req.DataDir.
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
		within = 3 * time.Second
	}
	s.mu.Lock()
	s.leases[req.DataDir] = &lease{epoch: req.Epoch, until: time.Now().Add(ttl), conninfo: req.Source, replyWithin: within}
	s.mu.Unlock()
	return Result{Status: Status{DataDir: req.DataDir, Running: true}}, nil
}

// RunLeases enforces the primary leases until ctx ends. The agent's owner
// runs it beside the HTTP server.
func (s *Server) RunLeases(ctx context.Context) {
	t := time.NewTicker(leaseCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.checkLeases(ctx)
	}
}

// checkLeases handles every expired lease.
func (s *Server) checkLeases(ctx context.Context) {
	now := time.Now()
	s.mu.Lock()
	var expired []string
	leases := map[string]lease{}
	for dir, l := range s.leases {
		if now.After(l.until) {
			expired = append(expired, dir)
			leases[dir] = *l
		}
	}
	s.mu.Unlock()
	for _, dir := range expired {
		s.expire(ctx, dir, leases[dir])
	}
}

// expire decides on one expired lease: a server that is gone or a standby
// needs nothing; a primary that a standby still streams from keeps
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
	writable, standbys, err := primaryState(ctx, l.conninfo, l.replyWithin)
	switch {
	case err != nil:
		// Not answering yet (just thawed, starting): look again at the
		// next check.
		s.log.Debug("lease expired; server does not answer", "data_dir", dir, "err", err)
		return
	case !writable:
		drop()
		return
	case standbys > 0:
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
	s.log.Warn("primary lease expired and no standby streams from it: fencing it", "data_dir", dir, "epoch", l.epoch,
		"expired", time.Since(l.until).Round(time.Millisecond))
	if err := s.stopServer(ctx, dir, "kill"); err != nil {
		s.log.Error("fence after lease expiry", "data_dir", dir, "err", err)
		return
	}
	drop()
}

// primaryState reads whether the server accepts writes and how many
// standbys stream from it and replied within replyWithin.
func primaryState(ctx context.Context, conninfo string, replyWithin time.Duration) (writable bool, standbys int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	cfg, err := pgx.ParseConfig(conninfo)
	if err != nil {
		return false, 0, err
	}
	cfg.RuntimeParams["application_name"] = "clustermgr-agent"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, 0, err
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(ctx, `SELECT NOT pg_is_in_recovery(),
	  (SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND reply_time > now() - $1::interval)`,
		fmt.Sprintf("%d milliseconds", replyWithin.Milliseconds())).Scan(&writable, &standbys)
	return writable, standbys, err
}
