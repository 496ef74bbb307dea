package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// secretPrefix starts every token secret, so that one is recognised in a
// leaked file or log (and secret scanners can be taught it).
const secretPrefix = "cmt_"

// secretLen is the length of a secret: the prefix and 32 random bytes in
// unpadded base64url.
const secretLen = len(secretPrefix) + 43

// NewSecret returns a fresh token secret.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token secret: %w", err)
	}
	return secretPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// WellFormed reports whether s has the shape of a secret NewSecret makes.
func WellFormed(s string) bool {
	if len(s) != secretLen || !strings.HasPrefix(s, secretPrefix) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s[len(secretPrefix):])
	return err == nil
}

// Hash is what the replicated state keeps of a secret: SHA-256 in hex. A
// secret has 256 random bits, so a fast hash is enough: there is nothing
// to guess that a slow one would protect.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// ValidHash reports whether h has the shape of a Hash.
func ValidHash(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

// ErrNoTokenFile is returned by ReadTokenFile for a file that does not
// exist.
var ErrNoTokenFile = errors.New("token file does not exist")

// ReadTokenFile reads a secret from path. The file must be readable by
// its owner alone (mode 0600 or 0400) and hold one well-formed secret.
func ReadTokenFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: %w", path, ErrNoTokenFile)
	}
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("token file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("token file %s has mode %04o: others can read it; chmod 600 it", path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	s := strings.TrimSpace(string(data))
	if !WellFormed(s) {
		return "", fmt.Errorf("token file %s does not hold a token (%s followed by 43 base64url characters)", path, secretPrefix)
	}
	return s, nil
}

// WriteTokenFile writes secret to a new file at path, mode 0600. It
// refuses to replace an existing file.
func WriteTokenFile(path, secret string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	if _, err := f.WriteString(secret + "\n"); err != nil {
		_ = f.Close()
		return fmt.Errorf("write token file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("write token file %s: %w", path, err)
	}
	return f.Close()
}
