package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/fencing"
)

// Client is the manager's client of one agent.
type Client struct {
	BaseURL string
	Token   string
	// HTTP serves the quick commands; Long, with no time limit of its own
	// (the caller's context bounds it), the ones that copy or rewrite a
	// whole data directory.
	HTTP, Long *http.Client
}

// NewClient returns a client of the agent at baseURL.
func NewClient(baseURL, token string) *Client {
	return NewClientVia(baseURL, token, nil)
}

// NewClientVia is NewClient over transport rt (mutual TLS when the
// agents run it); nil is http.DefaultTransport.
func NewClientVia(baseURL, token string, rt http.RoundTripper) *Client {
	return &Client{BaseURL: strings.TrimSuffix(baseURL, "/"), Token: token,
		HTTP: &http.Client{Timeout: 2 * time.Minute, Transport: rt}, Long: &http.Client{Transport: rt}}
}

// isLong reports whether command may run as long as a copy of the data
// directory takes: initdb, base backups, rewinds, rebuilds, restores,
// backups and removals.
func isLong(command string) bool {
	switch command {
	case "initdb", "basebackup", "rewind", "rebuild", "restore", "backup", "purge":
		return true
	}
	return false
}

// Error is an error answer of an agent.
type Error struct {
	Status int
	Detail string
}

func (e *Error) Error() string {
	return fmt.Sprintf("agent: %d %s: %s", e.Status, http.StatusText(e.Status), e.Detail)
}

// IsStaleEpoch reports whether err is the agent refusing an old epoch.
func IsStaleEpoch(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusConflict
}

func (c *Client) call(ctx context.Context, command string, req Request) (Result, error) {
	data, err := c.send(ctx, command, req)
	if err != nil {
		return Result{}, err
	}
	var res Result
	if err := json.Unmarshal(data, &res); err != nil {
		return Result{}, fmt.Errorf("agent %s %s: decode answer: %w", c.BaseURL, command, err)
	}
	return res, nil
}

// send sends a command and returns the body of its answer when it
// succeeded. A renewal or a declaration, thousands a second from a
// fleet's leader, is not decoded (call decodes).
func (c *Client) send(ctx context.Context, command string, req Request) ([]byte, error) {
	if req.Term == 0 {
		req.Term = fencing.Term(ctx)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+"/v1/agent/"+command, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if isLong(command) && c.Long != nil {
		hc = c.Long
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, &UnreachableError{URL: c.BaseURL, Command: command, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("agent %s %s: read answer: %w", c.BaseURL, command, err)
	}
	if resp.StatusCode != http.StatusOK {
		var p api.Problem
		if json.Unmarshal(data, &p) != nil || p.Detail == "" {
			p.Detail = strings.TrimSpace(string(data))
		}
		return nil, &Error{Status: resp.StatusCode, Detail: p.Detail}
	}
	return data, nil
}

// Status reports the state of dataDir.
func (c *Client) Status(ctx context.Context, dataDir string) (Status, error) {
	res, err := c.call(ctx, "status", Request{DataDir: dataDir})
	return res.Status, err
}

// Start starts the server in dataDir.
func (c *Client) Start(ctx context.Context, dataDir string, epoch uint64) (Status, error) {
	res, err := c.call(ctx, "start", Request{DataDir: dataDir, Epoch: epoch})
	return res.Status, err
}

// Stop stops the server (mode fast, immediate or kill).
func (c *Client) Stop(ctx context.Context, dataDir string, epoch uint64, mode string) (Status, error) {
	res, err := c.call(ctx, "stop", Request{DataDir: dataDir, Epoch: epoch, Mode: mode})
	return res.Status, err
}

// Restart restarts the server.
func (c *Client) Restart(ctx context.Context, dataDir string, epoch uint64, mode string) (Status, error) {
	res, err := c.call(ctx, "restart", Request{DataDir: dataDir, Epoch: epoch, Mode: mode})
	return res.Status, err
}

// Promote promotes a standby.
func (c *Client) Promote(ctx context.Context, dataDir string, epoch uint64) (Status, error) {
	res, err := c.call(ctx, "promote", Request{DataDir: dataDir, Epoch: epoch})
	return res.Status, err
}

// Rewind rewinds dataDir from source and configures it as its standby,
// streaming through slot when not empty.
func (c *Client) Rewind(ctx context.Context, dataDir string, epoch uint64, source, slot string) (Result, error) {
	return c.call(ctx, "rewind", Request{DataDir: dataDir, Epoch: epoch, Source: source, PrimarySlotName: slot})
}

// StopUntilCheckpoint asks for a fast shutdown and returns once the
// shutdown checkpoint is written (the postmaster may still be finishing);
// the status carries the checkpoint's location.
func (c *Client) StopUntilCheckpoint(ctx context.Context, dataDir string, epoch uint64) (Status, error) {
	res, err := c.call(ctx, "stop", Request{DataDir: dataDir, Epoch: epoch, Mode: "fast", UntilCheckpoint: true})
	return res.Status, err
}

// Rebuild replaces the data directory with a fresh base backup of the
// primary at source, keeping the old data until the copy is complete.
func (c *Client) Rebuild(ctx context.Context, dataDir string, epoch uint64, source, slot string) (Result, error) {
	return c.call(ctx, "rebuild", Request{DataDir: dataDir, Epoch: epoch, Source: source, PrimarySlotName: slot})
}

// ConfigureStandby writes standby.signal and primary_conninfo.
func (c *Client) ConfigureStandby(ctx context.Context, dataDir string, epoch uint64, conninfo, slot string) (Status, error) {
	res, err := c.call(ctx, "configure-standby", Request{DataDir: dataDir, Epoch: epoch, PrimaryConnInfo: conninfo, PrimarySlotName: slot})
	return res.Status, err
}

// InstallTimelineHistory puts the timeline history files the server's
// pg_wal lacks there (before a promotion from an earlier timeline).
func (c *Client) InstallTimelineHistory(ctx context.Context, dataDir string, epoch uint64, files map[string]string) error {
	_, err := c.call(ctx, "timeline-history", Request{DataDir: dataDir, Epoch: epoch, History: files})
	return err
}

// Initdb creates a primary's data directory (not started).
func (c *Client) Initdb(ctx context.Context, req Request) (Status, error) {
	res, err := c.call(ctx, "initdb", req)
	return res.Status, err
}

// Basebackup creates a standby's data directory from a primary (not
// started).
func (c *Client) Basebackup(ctx context.Context, req Request) (Status, error) {
	res, err := c.call(ctx, "basebackup", req)
	return res.Status, err
}

// Purge stops a server and removes its data directory.
func (c *Client) Purge(ctx context.Context, dataDir string, epoch uint64) error {
	_, err := c.call(ctx, "purge", Request{DataDir: dataDir, Epoch: epoch})
	return err
}

// Backup takes and verifies a base backup of the server at source.
func (c *Client) Backup(ctx context.Context, backupID, source string, epoch uint64) (BackupInfo, error) {
	res, err := c.call(ctx, "backup", Request{BackupID: backupID, Source: source, Epoch: epoch})
	if err != nil {
		return BackupInfo{}, err
	}
	var info BackupInfo
	if err := json.Unmarshal([]byte(res.Output), &info); err != nil {
		return BackupInfo{}, fmt.Errorf("agent %s backup: decode answer: %w", c.BaseURL, err)
	}
	return info, nil
}

// Restore builds a server in req.DataDir from a backup and the WAL archive
// up to req.TargetTime, promotes it and reports where it ended.
func (c *Client) Restore(ctx context.Context, req Request) (RestoreInfo, error) {
	res, err := c.call(ctx, "restore", req)
	if err != nil {
		return RestoreInfo{}, err
	}
	var info RestoreInfo
	if err := json.Unmarshal([]byte(res.Output), &info); err != nil {
		return RestoreInfo{}, fmt.Errorf("agent %s restore: decode answer: %w", c.BaseURL, err)
	}
	return info, nil
}

// UnreachableError is a command that never reached the agent (connection
// refused, timeout): the host or the agent is down, not the command wrong.
type UnreachableError struct {
	URL, Command string
	Err          error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("agent %s %s: %v", e.URL, e.Command, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Lease renews the primary lease of dataDir for ttl (see RunLeases);
// conninfo reaches the server itself from the agent's host.
func (c *Client) Lease(ctx context.Context, dataDir string, epoch uint64, conninfo string, ttl, ackWithin time.Duration) error {
	return c.LeaseFrom(ctx, LeaseRequest{DataDir: dataDir, Epoch: epoch, Conninfo: conninfo, From: time.Now(), TTL: ttl, AckWithin: ackWithin, AcksNeeded: 1})
}

// LeaseRequest is a renewal of a primary lease.
type LeaseRequest struct {
	DataDir  string
	Epoch    uint64
	Conninfo string // the server itself, from the agent's host
	// From is the sender's clock when the lease starts: the agent
	// refuses a renewal whose lease has ended when it arrives.
	From           time.Time
	TTL, AckWithin time.Duration
	Standbys       []string // the shard's standbys' application names
	// AcksNeeded is how many of them must acknowledge WAL once the lease
	// has run out for the primary to keep serving
	// (fencing.ServingAcks).
	AcksNeeded int
	// Node is the primary's cluster.shard.node name (NodeKey): the lease
	// declares it primary for its health checks.
	Node string
}

// CheckParameters has the agent's PostgreSQL check parameters (names,
// types, ranges) as the server would at its start; an *Error with status
// 400 names what it refuses.
func (c *Client) CheckParameters(ctx context.Context, params map[string]string) error {
	_, err := c.call(ctx, "check-parameters", Request{Parameters: params})
	return err
}

// RoleRequest declares what a node is, for its health checks.
type RoleRequest struct {
	DataDir string
	Epoch   uint64
	Node    string // NodeKey
	Role    string // RolePrimary or RoleStandby
	// Sync marks a synchronous standby; Maintenance one out of service.
	Sync, Maintenance bool
	// Conninfo reaches the server itself from the agent's host.
	Conninfo string
}

// Role declares a node's role to its agent.
func (c *Client) Role(ctx context.Context, r RoleRequest) error {
	_, err := c.send(ctx, "role", Request{DataDir: r.DataDir, Epoch: r.Epoch, Node: r.Node, Role: r.Role, Sync: r.Sync, Maintenance: r.Maintenance, Source: r.Conninfo})
	return err
}

// LeaseFrom renews a primary lease as r says.
func (c *Client) LeaseFrom(ctx context.Context, r LeaseRequest) error {
	req := Request{DataDir: r.DataDir, Epoch: r.Epoch, Source: r.Conninfo,
		LeaseMillis: r.TTL.Milliseconds(), LeaseFromMillis: r.From.UnixMilli(), ReplyWithinMillis: r.AckWithin.Milliseconds(), Standbys: r.Standbys, Node: r.Node}
	if r.AcksNeeded != 1 {
		// 1 is the default: an agent that predates the field (it
		// refuses unknown fields) still takes the renewals of shards
		// of two and three nodes during a rolling upgrade.
		req.AcksNeeded = &r.AcksNeeded
	}
	_, err := c.send(ctx, "lease", req)
	return err
}
