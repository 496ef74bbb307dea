package service

import (
	"net/http"
	"sort"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/auth"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

func (s *Service) listTokens(w http.ResponseWriter, r *http.Request) {
	listFromState(s, w, r, func(st *meta.State) []api.Token {
		var out []api.Token
		for _, t := range st.Tokens {
			out = append(out, api.Token{Name: t.Name, Scope: t.Scope, CreatedAt: t.CreatedAt, CreatedBy: t.CreatedBy})
		}
		return out
	}, func(t api.Token) string { return t.Name })
}

// createToken makes a token and answers its secret, once: the group keeps
// only its hash.
func (s *Service) createToken(w http.ResponseWriter, r *http.Request) {
	var req api.TokenRequest
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	secret, err := auth.NewSecret()
	if err != nil {
		writeError(w, r, err)
		return
	}
	t := meta.Token{Name: req.Name, Scope: req.Scope, Hash: auth.Hash(secret), CreatedBy: principalOf(r).name}
	if err := meta.ValidateToken(t); err != nil {
		writeError(w, r, err)
		return
	}
	cmd := &meta.PutToken{Token: t}
	if err := s.store.Apply(r.Context(), cmd); err != nil {
		writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, api.NewToken{Token: api.Token{Name: t.Name, Scope: t.Scope, CreatedAt: cmd.At, CreatedBy: t.CreatedBy}, Secret: secret})
}

// whoami answers the name and scope of the request's token: what a GUI
// shows and which actions it offers.
func whoami(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	writeJSON(w, http.StatusOK, api.Whoami{Token: p.name, Scope: p.scope.String()})
}

func (s *Service) revokeToken(w http.ResponseWriter, r *http.Request) {
	if err := s.store.Apply(r.Context(), &meta.RevokeToken{Name: chi.URLParam(r, "name")}); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listAudit answers the latest ?limit records (default 100), or the first
// ones after ?after_id, oldest first.
func (s *Service) listAudit(w http.ResponseWriter, r *http.Request) {
	limit, after := 100, uint64(0)
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > meta.MaxAudit {
			writeError(w, r, invalidField("limit", strconv.Quote(v)+" is not a number from 1 to "+strconv.Itoa(meta.MaxAudit)))
			return
		}
		limit = n
	}
	if v := q.Get("after_id"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, r, invalidField("after_id", strconv.Quote(v)+" is not an audit record id"))
			return
		}
		after = n
	}
	out := api.AuditList{Records: []api.AuditRecord{}, RejectedAuth: s.RejectedAuth()}
	err := s.view(r, func(st *meta.State) error {
		recs := st.Audit
		if after > 0 {
			i := sort.Search(len(recs), func(i int) bool { return recs[i].ID > after })
			recs = recs[i:min(len(recs), i+limit)]
		} else if len(recs) > limit {
			recs = recs[len(recs)-limit:]
		}
		for _, a := range recs {
			out.Records = append(out.Records, api.AuditRecord(a))
		}
		return nil
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
