package keyring

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
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

// Prefix starts every sealed value: format version 1.
const Prefix = "cms1:"

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// ErrNoKeyFile is returned by Load when the key file does not exist.
var ErrNoKeyFile = errors.New("no secret key file")

// Keyring is a replica's set of keys; the first one seals.
type Keyring struct {
	keys []key
}

type key struct {
	id   string
	aead cipher.AEAD
}

// New returns a keyring of raw keys, the first one sealing.
func New(raw ...[]byte) (*Keyring, error) {
	if len(raw) == 0 {
		return nil, errors.New("no key")
	}
	k := &Keyring{}
	seen := map[string]bool{}
	for i, r := range raw {
		if len(r) != KeySize {
			return nil, fmt.Errorf("key %d is %d bytes, not %d", i+1, len(r), KeySize)
		}
		block, err := aes.NewCipher(r)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		id := KeyID(r)
		if seen[id] {
			return nil, fmt.Errorf("key %d appears twice", i+1)
		}
		seen[id] = true
		k.keys = append(k.keys, key{id: id, aead: aead})
	}
	return k, nil
}

// KeyID names a key without revealing it: 12 hex digits of an HMAC of a
// fixed label under the key.
func KeyID(raw []byte) string {
	m := hmac.New(sha256.New, raw)
	m.Write([]byte("clustermgr secret key id"))
	return hex.EncodeToString(m.Sum(nil)[:6])
}

// NewKey returns a fresh random key as a key file line.
func NewKey() (string, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate secret key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// Current is the id of the key that seals.
func (k *Keyring) Current() string { return k.keys[0].id }

// IDs are the ids of every key, the sealing one first.
func (k *Keyring) IDs() []string {
	out := make([]string, len(k.keys))
	for i, x := range k.keys {
		out[i] = x.id
	}
	return out
}

// Seal encrypts plain for purpose (it must be given again to open it, so a
// sealed value cannot be moved to another purpose, such as another
// cluster). An empty plain stays empty.
func (k *Keyring) Seal(purpose, plain string) (string, error) {
	if plain == "" {
		return "", nil
	}
	cur := k.keys[0]
	nonce := make([]byte, cur.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	ct := cur.aead.Seal(nonce, nonce, []byte(plain), []byte(purpose))
	return Prefix + cur.id + ":" + base64.RawURLEncoding.EncodeToString(ct), nil
}

// Open decrypts a sealed value for purpose. An empty value opens to "".
// A value that is not sealed is refused: the group's state holds none
// once a leader has sealed what it found.
func (k *Keyring) Open(purpose, sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	id, body, ok := Parse(sealed)
	if !ok {
		return "", errors.New("the value is not sealed")
	}
	for _, x := range k.keys {
		if x.id != id {
			continue
		}
		ct, err := base64.RawURLEncoding.DecodeString(body)
		if err != nil || len(ct) < x.aead.NonceSize()+x.aead.Overhead() {
			return "", fmt.Errorf("the value sealed with key %s is damaged", id)
		}
		n := x.aead.NonceSize()
		plain, err := x.aead.Open(nil, ct[:n], ct[n:], []byte(purpose))
		if err != nil {
			return "", fmt.Errorf("the value sealed with key %s does not open for %s (damaged or moved)", id, purpose)
		}
		return string(plain), nil
	}
	return "", fmt.Errorf("sealed with key %s, which this replica's secret key file does not hold (it holds %s)", id, strings.Join(k.IDs(), ", "))
}

// Parse splits a sealed value into its key id and body.
func Parse(s string) (id, body string, ok bool) {
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return "", "", false
	}
	id, body, ok = strings.Cut(rest, ":")
	if !ok || len(id) != 12 || body == "" {
		return "", "", false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", "", false
	}
	if _, err := base64.RawURLEncoding.DecodeString(body); err != nil {
		return "", "", false
	}
	return id, body, true
}

// Sealed says whether s is a sealed value.
func Sealed(s string) bool {
	_, _, ok := Parse(s)
	return ok
}

// Load reads a key file. It must be readable by its owner alone: a file
// with any group or other permission is refused.
func Load(path string) (*Keyring, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoKeyFile, path)
	}
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("secret key file %s is a directory", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secret key file %s has mode %04o: it must be readable by its owner alone (chmod 600)", path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	return parseFile(path, data)
}

// parseFile reads the keys of a key file's contents.
func parseFile(path string, data []byte) (*Keyring, error) {
	var raw [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(t)
		if err != nil || len(b) != KeySize {
			return nil, fmt.Errorf("secret key file %s line %d: not a key (base64 of %d bytes, as clustermgr keygen prints)", path, line, KeySize)
		}
		raw = append(raw, b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("secret key file %s: %w", path, err)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("secret key file %s holds no key", path)
	}
	k, err := New(raw...)
	if err != nil {
		return nil, fmt.Errorf("secret key file %s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreate reads the key file, or, when it does not exist, writes one
// with a fresh key (mode 0600; the file is created, never overwritten).
// created says it was written.
func LoadOrCreate(path string) (k *Keyring, created bool, err error) {
	k, err = Load(path)
	if !errors.Is(err, ErrNoKeyFile) {
		return k, false, err
	}
	line, err := NewKey()
	if err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("write secret key file: %w", err)
	}
	_, werr := f.WriteString("# clustermgr secret key: the same file on every manager replica\n" + line + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, false, fmt.Errorf("write secret key file %s: %w", path, werr)
	}
	k, err = Load(path)
	return k, err == nil, err
}

// Ephemeral returns a keyring of one fresh key held in memory alone: what
// it seals no other process opens (tests, a replica without a state to
// keep).
func Ephemeral() *Keyring {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		panic("keyring: no randomness: " + err.Error())
	}
	k, err := New(b)
	if err != nil {
		panic(err)
	}
	return k
}
