package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/clustermgr/clustermgr/pkg/keyring"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// keysMissingError says that a secret cannot be sealed yet: a voter has not
// shown that it holds the key (503: it may be starting, or its key file
// differs).
type keysMissingError struct {
	key     string
	members []string
}

func (e *keysMissingError) Error() string {
	return fmt.Sprintf("manager replica(s) %s have not shown that they hold secret key %s, the first key of this replica's secret_key_file: "+
		"a secret sealed with it could not be used after a leader change; put the same secret_key_file on every replica (or wait for a starting replica)",
		strings.Join(e.members, ", "), e.key)
}

// keyHolders is what the secrets code needs of the HA pipeline: the key
// ids the followers reported in their fresh views.
type keyHolders interface {
	PeerKeys() map[string][]string
}

// missingKey returns the voters other than this replica that have not
// reported holding key id. Without an HA pipeline no replica reports and
// none opens the clusters' passwords: nothing is missing.
func missingKey(store Store, ha keyHolders, id string) ([]string, error) {
	if ha == nil {
		return nil, nil
	}
	info, err := store.Info()
	if err != nil {
		return nil, fmt.Errorf("read the group's members: %w", err)
	}
	views := ha.PeerKeys()
	var missing []string
	for _, m := range info.Members {
		if !m.Voter || m.ID == store.ID() {
			continue
		}
		held := false
		for _, k := range views[m.ID] {
			held = held || k == id
		}
		if !held {
			missing = append(missing, m.ID)
		}
	}
	sort.Strings(missing)
	return missing, nil
}

// keyWait bounds the wait for the followers' first views (a group that
// has just started) before a password is refused for want of them.
const keyWait = 1500 * time.Millisecond

// sealPassword checks a cluster's password in clear and seals it for the
// state, once every voter holds the sealing key.
func (s *Service) sealPassword(ctx context.Context, field, cluster, plain string) (string, error) {
	if err := meta.ValidatePassword(field, plain); err != nil {
		return "", err
	}
	if plain == "" {
		return "", nil
	}
	return s.sealSecret(ctx, meta.PasswordPurpose(cluster), plain)
}

// sealSecret seals plain for purpose once every voter holds the sealing
// key.
func (s *Service) sealSecret(ctx context.Context, purpose, plain string) (string, error) {
	k := s.opts.Keyring
	deadline := time.Now().Add(keyWait)
	for {
		missing, err := missingKey(s.store, s.keyHolders(), k.Current())
		if err != nil {
			return "", err
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return "", &keysMissingError{key: k.Current(), members: missing}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return k.Seal(purpose, plain)
}

func (s *Service) keyHolders() keyHolders {
	if s.opts.HA == nil {
		return nil
	}
	return s.opts.HA
}

// openPeerSecret opens the group's peer secret as the state holds it (in
// clear when an older version recorded it, until the leader seals it).
func openPeerSecret(k *keyring.Keyring, v string) (string, error) {
	if !keyring.Sealed(v) {
		return v, nil
	}
	return k.Open(meta.PeerSecretPurpose, v)
}

// Sealer is a leader task: it seals with the current key every secret the
// state holds in clear or under another key (after a key rotation, or
// from an older version), once every voter holds the current key; and it
// hands leadership to a replica that can open the secrets when this one
// cannot.
type Sealer struct {
	Store   Store
	Keyring *keyring.Keyring
	// HA reports the followers' keys; nil: no replica reports, and the
	// secrets are sealed at once.
	HA       keyHolders
	Interval time.Duration // default 2 s
	Logger   *slog.Logger
}

// Run reseals until ctx ends.
func (r *Sealer) Run(ctx context.Context) {
	if r.Interval <= 0 {
		r.Interval = 2 * time.Second
	}
	var lastLog time.Time
	for {
		if err := r.once(ctx); err != nil && ctx.Err() == nil && time.Since(lastLog) >= time.Minute {
			lastLog = time.Now()
			r.Logger.Error("seal the group's secrets", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.Interval):
		}
	}
}

// secret is one secret of the state and what it is bound to.
type secret struct {
	cluster, webhook, purpose, value string
}

func stateSecrets(st *meta.State) []secret {
	var out []secret
	if st.PeerSecret != "" {
		out = append(out, secret{purpose: meta.PeerSecretPurpose, value: st.PeerSecret})
	}
	for _, name := range sortedKeys(st.Clusters) {
		if pw := st.Clusters[name].Settings.PGPassword; pw != "" {
			out = append(out, secret{cluster: name, purpose: meta.PasswordPurpose(name), value: pw})
		}
	}
	for _, name := range sortedKeys(st.Webhooks) {
		out = append(out, secret{webhook: name, purpose: meta.WebhookSecretPurpose(name), value: st.Webhooks[name].Secret})
	}
	return out
}

func (r *Sealer) once(ctx context.Context) error {
	var all []secret
	_ = r.Store.View(ctx, meta.Stale, func(st *meta.State) error {
		all = stateSecrets(st)
		return nil
	})
	cur := r.Keyring.Current()
	cmd := &meta.ResealSecrets{Key: cur}
	var unopened []string
	for _, s := range all {
		id, _, sealed := keyring.Parse(s.value)
		if sealed && id == cur {
			continue
		}
		plain := s.value
		if sealed {
			var err error
			plain, err = r.Keyring.Open(s.purpose, s.value)
			if err != nil && s.cluster == "" && s.webhook == "" && !r.heldByAVoter(id) {
				// No replica can open the peer secret (the key files
				// were replaced): it is only the group's own, so a new
				// one takes its place.
				if plain, err = newPeerSecret(); err != nil {
					return err
				}
				r.Logger.Warn("no replica holds the key of the group's peer secret; replacing it", "key", id)
			}
			if err != nil {
				unopened = append(unopened, id)
				continue
			}
		}
		to, err := r.Keyring.Seal(s.purpose, plain)
		if err != nil {
			return err
		}
		cmd.Items = append(cmd.Items, meta.ResealItem{Cluster: s.cluster, Webhook: s.webhook, From: s.value, To: to})
	}
	if len(cmd.Items) > 0 {
		if err := r.reseal(ctx, cmd); err != nil {
			return err
		}
	}
	if len(unopened) > 0 {
		return r.handOver(ctx, unopened)
	}
	return nil
}

// reseal proposes cmd once every voter holds its key.
func (r *Sealer) reseal(ctx context.Context, cmd *meta.ResealSecrets) error {
	missing, err := missingKey(r.Store, r.HA, cmd.Key)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return &keysMissingError{key: cmd.Key, members: missing}
	}
	if err := r.Store.Apply(ctx, cmd); err != nil {
		return fmt.Errorf("reseal %d secret(s) with key %s: %w", len(cmd.Items), cmd.Key, err)
	}
	r.Logger.Info("sealed the group's secrets with the current key", "key", cmd.Key, "secrets", len(cmd.Items))
	return nil
}

// heldByAVoter says whether a follower reported holding key id.
func (r *Sealer) heldByAVoter(id string) bool {
	if r.HA == nil {
		return false
	}
	for _, keys := range r.HA.PeerKeys() {
		if slices.Contains(keys, id) {
			return true
		}
	}
	return false
}

// handOver transfers leadership to a voter that reported holding every
// key in ids; with none, this replica stays leader and says why.
func (r *Sealer) handOver(ctx context.Context, ids []string) error {
	sort.Strings(ids)
	ids = slices.Compact(ids)
	lacking := fmt.Errorf("this replica's secret_key_file does not hold key(s) %s that seal the group's secrets: it cannot reach the clusters' nodes; add the key(s) to its secret_key_file and restart it", strings.Join(ids, ", "))
	if r.HA == nil {
		return lacking
	}
	for member, keys := range r.HA.PeerKeys() {
		have := map[string]bool{}
		for _, k := range keys {
			have[k] = true
		}
		all := true
		for _, id := range ids {
			all = all && have[id]
		}
		if !all {
			continue
		}
		r.Logger.Error("handing leadership to a replica that holds the group's secret keys", "to", member, "err", lacking)
		if err := r.Store.TransferLeadership(ctx, member); err != nil {
			return errors.Join(lacking, fmt.Errorf("transfer leadership to %s: %w", member, err))
		}
		return nil
	}
	return lacking
}
