package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
)

// Error is an error answer of the API.
type Error struct {
	Status  int
	Problem api.Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, http.StatusText(e.Status))
	detail := e.Problem.Detail
	if e.Problem.Field != "" && !strings.HasPrefix(detail, e.Problem.Field+":") {
		detail = e.Problem.Field + ": " + detail
	}
	if detail != "" {
		b.WriteString(": ")
		b.WriteString(detail)
	}
	return b.String()
}

// Client talks to a manager group.
type Client struct {
	servers []string
	http    *http.Client
	retries int
	backoff time.Duration
	token   string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (timeouts, transport).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithToken sets the bearer token sent with every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithRetries sets how many more times the server list is tried while every
// server answers 503 or cannot be reached, and the pause between passes.
func WithRetries(n int, backoff time.Duration) Option {
	return func(c *Client) { c.retries, c.backoff = n, backoff }
}

// New returns a client of the replicas at servers (base URLs; a bare
// host:port gets http://).
func New(servers []string, opts ...Option) (*Client, error) {
	c := &Client{http: &http.Client{Timeout: 10 * time.Second}, retries: 10, backoff: 200 * time.Millisecond}
	for _, s := range servers {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "://") {
			s = "http://" + s
		}
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("server %q is not an http(s) URL or host:port", s)
		}
		c.servers = append(c.servers, strings.TrimSuffix(u.String(), "/"))
	}
	if len(c.servers) == 0 {
		return nil, errors.New("no server given")
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Servers returns the normalised server list.
func (c *Client) Servers() []string { return append([]string(nil), c.servers...) }

// do sends a request to each server in turn until one answers with
// something other than 503, retrying the list while none does. A 2xx
// answer is decoded into out (when non-nil); another answer becomes *Error.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
	}
	var last error
	for attempt := 0; attempt <= c.retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
			case <-time.After(c.backoff):
			}
		}
		for _, srv := range c.servers {
			status, data, err := c.send(ctx, method, srv+path, body)
			if err != nil {
				last = fmt.Errorf("%s: %w", srv, err)
				if ctx.Err() != nil {
					return fmt.Errorf("%s %s: %w (last error: %v)", method, path, ctx.Err(), last)
				}
				var cve *tls.CertificateVerificationError
				if errors.As(err, &cve) {
					// Trying again will not change the certificate.
					return fmt.Errorf("%s %s: %w", method, path, last)
				}
				continue
			}
			if status == http.StatusServiceUnavailable {
				last = decodeError(status, data)
				continue
			}
			if status < 200 || status > 299 {
				return decodeError(status, data)
			}
			if out != nil && len(data) > 0 {
				if err := json.Unmarshal(data, out); err != nil {
					return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
				}
			}
			return nil
		}
	}
	return fmt.Errorf("no manager replica could serve %s %s: %w", method, path, last)
}

func (c *Client) send(ctx context.Context, method, url string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, data, nil
}

func decodeError(status int, data []byte) error {
	e := &Error{Status: status}
	if err := json.Unmarshal(data, &e.Problem); err != nil || e.Problem.Status == 0 {
		text := strings.TrimSpace(string(data))
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		e.Problem = api.Problem{Status: status, Title: http.StatusText(status), Detail: text}
	}
	return e
}
