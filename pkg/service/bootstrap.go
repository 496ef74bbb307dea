package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/clustermgr/clustermgr/pkg/auth"
	"github.com/clustermgr/clustermgr/pkg/keyring"
	"github.com/clustermgr/clustermgr/pkg/meta"
)

// BootstrapAdmin is the name of the first admin token.
const BootstrapAdmin = "admin"

// Bootstrap gives a new group, from its first leader, what it needs
// before anyone may use it: the secret replicas present to each other
// (followers' views, a follower recording its address) and the first
// admin token, read from AdminTokenFile or, when that file does not
// exist, made and written there (mode 0600). Each is proposed only while
// the group has none; the first recorded stays.
type Bootstrap struct {
	Store          Store
	AdminTokenFile string // "": no admin token is made (tokens come from elsewhere)
	Keyring        *keyring.Keyring
	Logger         *slog.Logger
}

// Run is a leader task: it retries every second until both are recorded
// or ctx ends.
func (b *Bootstrap) Run(ctx context.Context) {
	for {
		err := b.once(ctx)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
		b.Logger.Warn("bootstrap the group's credentials", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (b *Bootstrap) once(ctx context.Context) error {
	var hasSecret, hasTokens bool
	_ = b.Store.View(ctx, meta.Stale, func(st *meta.State) error {
		hasSecret, hasTokens = st.PeerSecret != "", len(st.Tokens) > 0
		return nil
	})
	if !hasSecret {
		secret, err := newPeerSecret()
		if err != nil {
			return err
		}
		sealed, err := b.Keyring.Seal(meta.PeerSecretPurpose, secret)
		if err != nil {
			return err
		}
		if err := b.Store.Apply(ctx, &meta.SetPeerSecret{Secret: sealed}); err != nil {
			return fmt.Errorf("record peer secret: %w", err)
		}
	}
	if hasTokens || b.AdminTokenFile == "" {
		return nil
	}
	secret, err := auth.ReadTokenFile(b.AdminTokenFile)
	if errors.Is(err, auth.ErrNoTokenFile) {
		if secret, err = auth.NewSecret(); err != nil {
			return err
		}
		if err = auth.WriteTokenFile(b.AdminTokenFile, secret); err != nil {
			return err
		}
		b.Logger.Info("wrote the group's first admin token", "file", b.AdminTokenFile)
	}
	if err != nil {
		return err
	}
	return b.Store.Apply(ctx, &meta.PutToken{Bootstrap: true,
		Token: meta.Token{Name: BootstrapAdmin, Scope: auth.Admin.String(), Hash: auth.Hash(secret), CreatedBy: "bootstrap"}})
}

// newPeerSecret makes a secret for replicas to present to each other.
func newPeerSecret() (string, error) {
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generate peer secret: %w", err)
	}
	return hex.EncodeToString(buf), nil
}
