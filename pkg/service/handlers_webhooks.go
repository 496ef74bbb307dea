package service

import (
	"net/http"
	"sort"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/clustermgr/clustermgr/pkg/api"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// Bounds of a webhook secret.
const (
	minWebhookSecret = 16
	maxWebhookSecret = 512
)

func (s *Service) toAPIWebhook(w *meta.Webhook) api.Webhook {
	out := api.Webhook{Name: w.Name, URL: w.URL, Kinds: append([]string(nil), w.Kinds...), Cluster: w.Cluster, Delivered: w.Delivered, CreatedAt: w.CreatedAt}
	if s.opts.Webhooks != nil {
		if ds := s.opts.Webhooks.Deliveries(w.Name); len(ds) > 0 && ds[0].Error != "" {
			out.LastError = ds[0].Error
		}
	}
	return out
}

func (s *Service) listWebhooks(w http.ResponseWriter, r *http.Request) {
	out := api.WebhookList{Webhooks: []api.Webhook{}}
	if err := s.view(r, func(st *meta.State) error {
		for _, wh := range st.Webhooks {
			out.Webhooks = append(out.Webhooks, s.toAPIWebhook(wh))
		}
		return nil
	}); err != nil {
		writeError(w, r, err)
		return
	}
	sort.Slice(out.Webhooks, func(i, j int) bool { return out.Webhooks[i].Name < out.Webhooks[j].Name })
	writeJSON(w, http.StatusOK, out)
}

// putWebhook creates or replaces a subscription; its secret is sealed
// before it reaches Raft and never shown again.
func (s *Service) putWebhook(w http.ResponseWriter, r *http.Request) {
	var req api.WebhookRequest
	if err := decodeBody(r, &req, false); err != nil {
		writeError(w, r, err)
		return
	}
	if err := meta.ValidateName("name", req.Name); err != nil {
		writeError(w, r, err)
		return
	}
	if err := meta.ValidateWebhookURL("url", req.URL); err != nil {
		writeError(w, r, err)
		return
	}
	if n := len(req.Secret); n < minWebhookSecret || n > maxWebhookSecret || strings.ContainsAny(req.Secret, "\x00\r\n") {
		writeProblem(w, r, api.Problem{Status: http.StatusBadRequest, Field: "secret", Detail: "secret: must be 16-512 characters on one line"})
		return
	}
	sealed, err := s.sealSecret(r.Context(), meta.WebhookSecretPurpose(req.Name), req.Secret)
	if err != nil {
		writeError(w, r, err)
		return
	}
	cmd := &meta.PutWebhook{Webhook: meta.Webhook{Name: req.Name, URL: req.URL, Kinds: req.Kinds, Cluster: req.Cluster, Secret: sealed}}
	if err := s.store.Apply(r.Context(), cmd); err != nil {
		writeError(w, r, err)
		return
	}
	var out api.Webhook
	_ = s.store.View(r.Context(), meta.Stale, func(st *meta.State) error {
		if wh := st.Webhooks[req.Name]; wh != nil {
			out = s.toAPIWebhook(wh)
		}
		return nil
	})
	writeJSON(w, http.StatusCreated, out)
}

func (s *Service) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	if err := s.store.Apply(r.Context(), &meta.DeleteWebhook{Name: chi.URLParam(r, "name")}); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// webhookDeliveries answers the leader's last attempts for a
// subscription, newest first.
func (s *Service) webhookDeliveries(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := s.view(r, func(st *meta.State) error {
		if _, ok := st.Webhooks[name]; !ok {
			return notFoundErr("webhook %q does not exist", name)
		}
		return nil
	}); err != nil {
		writeError(w, r, err)
		return
	}
	out := api.DeliveryList{Deliveries: []api.Delivery{}}
	if s.opts.Webhooks != nil {
		out.Deliveries = append(out.Deliveries, s.opts.Webhooks.Deliveries(name)...)
	}
	writeJSON(w, http.StatusOK, out)
}
