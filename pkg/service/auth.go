package service

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/auth"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// principal is who a request is from: a token's name and scope, or the
// group's peer credential.
type principal struct {
	name  string
	scope auth.Scope
}

type principalKey struct{}

// peerName is the principal of a request carrying the peer credential.
const peerName = "peer"

// principalOf returns the request's authenticated principal.
func principalOf(r *http.Request) principal {
	p, _ := r.Context().Value(principalKey{}).(principal)
	return p
}

// authState counts the requests refused for want of a valid token and
// logs them at most once per logEvery.
type authState struct {
	rejected atomic.Uint64
	mu       sync.Mutex
	lastLog  time.Time
	unlogged uint64
}

const rejectLogEvery = 10 * time.Second

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// authorize admits a request whose token has scope need (401 without a
// valid token, 403 with a smaller scope). peerOK also admits the group's
// peer credential (a replica recording its own address).
func (s *Service) authorize(need auth.Scope, peerOK bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if need == auth.Open {
				next.ServeHTTP(w, r)
				return
			}
			tok, ok := bearer(r)
			if !ok {
				s.rejectAuth(w, r, "a bearer token is required (Authorization: Bearer <token>)")
				return
			}
			p, ok := s.lookup(r.Context(), tok)
			if !ok && peerOK {
				if peer := s.PeerCredential(); peer != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(peer)) == 1 {
					p, ok = principal{name: peerName, scope: auth.Open}, true
				}
			}
			if !ok {
				s.rejectAuth(w, r, "the bearer token is not valid")
				return
			}
			if p.name != peerName && !p.scope.Covers(need) {
				s.log.Warn("request refused: the token's scope is too small", "token", p.name, "scope", p.scope, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
				writeProblem(w, r, api.Problem{Status: http.StatusForbidden,
					Detail: fmt.Sprintf("token %s has scope %s; %s %s needs %s", p.name, p.scope, r.Method, r.URL.Path, need)})
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
		})
	}
}

// lookup finds the token whose secret is tok in this replica's state.
func (s *Service) lookup(ctx context.Context, tok string) (principal, bool) {
	if !auth.WellFormed(tok) {
		return principal{}, false
	}
	h := auth.Hash(tok)
	var p principal
	found := false
	_ = s.store.View(ctx, meta.Stale, func(st *meta.State) error {
		if t := st.TokenByHash(h); t != nil {
			if sc, err := auth.ParseScope(t.Scope); err == nil {
				p, found = principal{name: t.Name, scope: sc}, true
			}
		}
		return nil
	})
	return p, found
}

// PeerCredential is the credential replicas present to each other: the
// configured override, else the group's secret ("" until the first
// leader made it).
func (s *Service) PeerCredential() string {
	if s.opts.HA != nil {
		return s.opts.HA.PeerToken()
	}
	var sealed string
	_ = s.store.View(context.Background(), meta.Stale, func(st *meta.State) error {
		sealed = st.PeerSecret
		return nil
	})
	secret, err := openPeerSecret(s.opts.Keyring, sealed)
	if err != nil {
		return ""
	}
	return secret
}

// rejectAuth answers 401 and counts the refusal; the log says how many
// there were at most once per rejectLogEvery.
func (s *Service) rejectAuth(w http.ResponseWriter, r *http.Request, detail string) {
	n := s.auth.rejected.Add(1)
	s.metrics.RejectedAuth()
	s.auth.mu.Lock()
	s.auth.unlogged++
	now := time.Now()
	var count uint64
	if now.Sub(s.auth.lastLog) >= rejectLogEvery {
		count, s.auth.unlogged, s.auth.lastLog = s.auth.unlogged, 0, now
	}
	s.auth.mu.Unlock()
	if count > 0 {
		s.log.Warn("requests refused without a valid token", "count", count, "total", n, "last_remote", r.RemoteAddr, "last_path", r.URL.Path)
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="clustermgr"`)
	writeProblem(w, r, api.Problem{Status: http.StatusUnauthorized, Detail: detail})
}

// RejectedAuth is how many requests this replica refused for want of a
// valid token since it started.
func (s *Service) RejectedAuth() uint64 { return s.auth.rejected.Load() }

// requireJSON refuses a mutation whose body is not declared JSON (415):
// a browser can send text/plain or a form to any site without asking,
// but not application/json.
func requireJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
				if ct == "" {
					ct = "none"
				}
				writeProblem(w, r, api.Problem{Status: http.StatusUnsupportedMediaType,
					Detail: fmt.Sprintf("content type %s is not application/json; send Content-Type: application/json", ct)})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// recorder keeps a response's status and the start of an error body (the
// audit trail's outcome; the metrics count the status).
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status >= 400 && rec.body.Len() < 4096 {
		rec.body.Write(b[:min(len(b), 4096-rec.body.Len())])
	}
	return rec.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the writer underneath.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// Flush passes a flush on (a forwarded response streams through it).
func (rec *recorder) Flush() {
	if f, ok := rec.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// audited records an accepted mutation in the audit trail once it has
// been answered: the token's name, where it came from, the method and
// path (never the body: it may hold a password) and the outcome. A
// request refused as invalid or conflicting (4xx) changed nothing and
// writes nothing to the log: the replica's own log says who sent it.
func (s *Service) audited(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		outcome := "ok"
		if rec.status >= 400 {
			outcome = problemDetail(rec.body.Bytes())
		}
		if rec.status >= 400 && rec.status < 500 {
			s.log.Info("request refused", "token", principalOf(r).name, "method", r.Method, "path", meta.Truncate(r.URL.Path, 512),
				"remote", r.RemoteAddr, "status", rec.status, "detail", outcome)
			return
		}
		ar := meta.AuditRecord{Token: principalOf(r).name, Remote: r.RemoteAddr, Method: r.Method, Path: meta.Truncate(r.URL.Path, 512),
			Status: rec.status, Outcome: outcome}
		if via := r.Header.Get(api.ForwardedHeader); via != "" {
			ar.Via, ar.ForwardedFor = meta.Truncate(via, 64), meta.Truncate(r.Header.Get("X-Forwarded-For"), 256)
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
		defer cancel()
		if err := s.store.Apply(ctx, &meta.RecordAudit{Record: ar}); err != nil {
			s.log.Warn("record audit", "method", r.Method, "path", r.URL.Path, "token", ar.Token, "err", err)
		}
	})
}
