package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// Registrar keeps a follower's member record (its API address) current in
// the replicated state, so that other followers can forward to it once it
// leads. The leader records itself when it takes over; a follower asks the
// leader to record it through the join endpoint, which is idempotent.
type Registrar struct {
	Store    Store
	Client   *http.Client
	Interval time.Duration
	Logger   *slog.Logger
	// Credential returns the group's peer credential, which the join
	// endpoint accepts for a voter's own address.
	Credential func() string
}

// Run checks the record every Interval until ctx is cancelled.
func (g *Registrar) Run(ctx context.Context) {
	interval := g.Interval
	if interval <= 0 {
		interval = time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := g.once(ctx); err != nil {
			g.Logger.Debug("member record not yet current", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// once records this replica through the leader when its record is missing
// or out of date.
func (g *Registrar) once(ctx context.Context) error {
	want := meta.Member{ID: g.Store.ID(), RaftAddr: g.Store.RaftAddr(), APIAddr: g.Store.APIAddr()}
	var have meta.Member
	_ = g.Store.View(ctx, meta.Stale, func(st *meta.State) error {
		if m, ok := st.Members[want.ID]; ok {
			have = *m
		}
		return nil
	})
	if have == want || g.Store.IsLeader() {
		return nil
	}
	_, leaderAPI := g.Store.Leader()
	if leaderAPI == "" {
		return fmt.Errorf("no leader API address known")
	}
	cred := g.Credential()
	if cred == "" {
		return fmt.Errorf("the group's peer credential is not replicated here yet")
	}
	body, err := json.Marshal(api.JoinRequest{ID: want.ID, RaftAddr: want.RaftAddr, APIAddr: want.APIAddr})
	if err != nil {
		return fmt.Errorf("encode join request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(leaderAPI, "/")+"/v1/manager/members", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build join request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.ForwardedHeader, want.ID)
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := g.Client.Do(req)
	if err != nil {
		return fmt.Errorf("record member at leader %s: %w", leaderAPI, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		var p api.Problem
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&p)
		return fmt.Errorf("record member at leader %s: %d %s", leaderAPI, resp.StatusCode, p.Detail)
	}
	g.Logger.Info("recorded own API address at the leader", "leader_api", leaderAPI, "api_addr", want.APIAddr)
	return nil
}
