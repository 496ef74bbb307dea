package meta

import (
	"fmt"

	"github.com/clustermgr/clustermgr/pkg/keyring"
)

func applyResealSecrets(s *State, c *ResealSecrets, p pass) error {
	if len(c.Items) == 0 {
		return invalid("items", "is empty")
	}
	n := 0
	for i, it := range c.Items {
		field := fmt.Sprintf("items[%d].to", i)
		id, _, ok := keyring.Parse(it.To)
		if !ok || id != c.Key {
			return invalid(field, "is not sealed with key %s", c.Key)
		}
		if len(it.To) > MaxSealedLen {
			return invalid(field, "is longer than %d characters", MaxSealedLen)
		}
		cur, ok := s.PeerSecret, it.Cluster == "" && it.Webhook == ""
		if it.Webhook != "" {
			w, found := s.Webhooks[it.Webhook]
			if !found {
				continue
			}
			cur, ok = w.Secret, true
		}
		if !ok {
			cl, found := s.Clusters[it.Cluster]
			if !found {
				continue
			}
			cur, ok = cl.Settings.PGPassword, true
		}
		if cur == it.From {
			n++
		}
	}
	if p.check || n == 0 {
		return nil
	}
	for _, it := range c.Items {
		if it.Webhook != "" {
			if w, ok := s.Webhooks[it.Webhook]; ok && w.Secret == it.From {
				next := *w
				next.Secret = it.To
				s.Webhooks[it.Webhook] = &next
			}
			continue
		}
		if it.Cluster == "" {
			if s.PeerSecret == it.From {
				s.PeerSecret = it.To
			}
			continue
		}
		if cl, ok := s.Clusters[it.Cluster]; ok && cl.Settings.PGPassword == it.From {
			cl.Settings.PGPassword = it.To
		}
	}
	s.addEvent(Event{At: c.At, Kind: EventSecretsResealed, Message: fmt.Sprintf("%d secret(s) sealed with key %s", n, c.Key)})
	return nil
}
