package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Config is the whole server configuration.
type Config struct {
	Server ServerConfig
	Raft   RaftConfig
	API    APIConfig
	HA     HAConfig
	Backup BackupConfig
	TLS    TLSConfig
	Log    LogConfig
}

// TLSConfig is the [tls] section: this replica's certificate and key and
// the group's CA. Set, the API is served over HTTPS and Raft, forwarded
// requests and followers' views run over mutual TLS.
type TLSConfig struct {
	CertFile string
	KeyFile  string
	CAFile   string
}

// BackupConfig is the [backup] section.
type BackupConfig struct {
	// MinInterval is the shortest time a backup schedule may leave
	// between two backups.
	MinInterval time.Duration
}

// HAConfig is the [ha] section.
type HAConfig struct {
	ProbeInterval    time.Duration
	ProbeTimeout     time.Duration
	FailureThreshold int
	RejoinBackoff    time.Duration
	LeaseTTL         time.Duration
	// RebuildOnRewindFailure rebuilds a node from a fresh base backup
	// when pg_rewind cannot bring it back.
	RebuildOnRewindFailure bool
}

// ServerConfig is the [server] section.
type ServerConfig struct {
	NodeID   string
	DataDir  string
	RaftAddr string
	// APIAddr is the host:port the REST API listens on.
	APIAddr string
	// AdvertiseAPI is the URL other replicas use to reach this API. Empty
	// means "http://" + the address the API listens on, filled in by the
	// replica once it listens, so that a changed APIAddr is never shadowed
	// by a stale default.
	AdvertiseAPI string
	// Peers is "id=host:port,..." of Raft addresses; empty means wait to be
	// joined.
	Peers      string
	AgentToken string
	PeerToken  string
	// AdminTokenFile holds the group's first admin token ("": admin.token
	// in DataDir).
	AdminTokenFile string
	// SecretKeyFile holds the keys that seal the secrets kept in Raft
	// ("": secret.key in DataDir).
	SecretKeyFile string
}

// RaftConfig is the [raft] section.
type RaftConfig struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	SnapshotInterval   time.Duration
	ApplyTimeout       time.Duration
	SnapshotThreshold  uint64
	TrailingLogs       uint64
	MaxAppendEntries   int
}

// APIConfig is the [api] section.
type APIConfig struct {
	MaxBodyBytes    int64
	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	ForwardTimeout  time.Duration
	ShutdownTimeout time.Duration
}

// LogConfig is the [log] section.
type LogConfig struct {
	Level  string
	Format string
}

// key describes one configuration key: its default and how it is read into
// and checked on a Config.
type key struct {
	name string
	def  any
	// set reads the value (already overridden by env and flags) into c.
	set func(c *Config, v *viper.Viper) error
	// check validates the value on c; nil when any value is allowed.
	check func(c *Config) error
}

func durationKey(name string, def, lo, hi time.Duration, field func(*Config) *time.Duration) key {
	return key{
		name: name, def: def.String(),
		set: func(c *Config, v *viper.Viper) error {
			raw := v.Get(name)
			s := fmt.Sprint(raw)
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%s = %q is not a duration (like 300ms, 5s, 1m): %w", name, s, err)
			}
			*field(c) = d
			return nil
		},
		check: func(c *Config) error {
			if d := *field(c); d < lo || d > hi {
				return fmt.Errorf("%s = %s is out of range %s-%s", name, fmtDuration(d), fmtDuration(lo), fmtDuration(hi))
			}
			return nil
		},
	}
}

// fmtDuration writes d the way the file does: 5m rather than 5m0s, 24h
// rather than 24h0m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func intKey[T int | int64 | uint64](name string, def, lo, hi T, field func(*Config) *T) key {
	return key{
		name: name, def: def,
		set: func(c *Config, v *viper.Viper) error {
			s := strings.TrimSpace(fmt.Sprint(v.Get(name)))
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("%s = %q is not an integer", name, s)
			}
			if n < 0 && lo >= 0 {
				return fmt.Errorf("%s = %d is out of range %v-%v", name, n, lo, hi)
			}
			*field(c) = T(n)
			return nil
		},
		check: func(c *Config) error {
			if n := *field(c); n < lo || n > hi {
				return fmt.Errorf("%s = %v is out of range %v-%v", name, n, lo, hi)
			}
			return nil
		},
	}
}

func boolKey(name string, def bool, field func(*Config) *bool) key {
	return key{
		name: name, def: def,
		set: func(c *Config, v *viper.Viper) error {
			s := strings.TrimSpace(fmt.Sprint(v.Get(name)))
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("%s = %q is not true or false", name, s)
			}
			*field(c) = b
			return nil
		},
		check: func(*Config) error { return nil },
	}
}

func stringKey(name, def string, field func(*Config) *string, check func(name, v string) error) key {
	k := key{
		name: name, def: def,
		set: func(c *Config, v *viper.Viper) error {
			raw := v.Get(name)
			s, ok := raw.(string)
			if !ok {
				return fmt.Errorf("%s = %v is not a string", name, raw)
			}
			*field(c) = s
			return nil
		},
	}
	if check != nil {
		k.check = func(c *Config) error { return check(name, *field(c)) }
	}
	return k
}

var idRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func checkNodeID(name, v string) error {
	if v == "" {
		return fmt.Errorf("%s is required (a lowercase name such as m1, up to 63 characters of [a-z0-9-])", name)
	}
	if !idRE.MatchString(v) {
		return fmt.Errorf("%s = %q must be up to 63 characters of [a-z0-9-], starting and ending with a letter or digit", name, v)
	}
	return nil
}

func checkRequired(name, v string) error {
	if v == "" {
		return fmt.Errorf("%s is required", name)
	}
	return nil
}

func checkHostPort(name, v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil || host == "" {
		return fmt.Errorf("%s = %q is not host:port (port 1-65535)", name, v)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p < 1 {
		return fmt.Errorf("%s = %q: port is out of range 1-65535", name, v)
	}
	return nil
}

// checkRaftAddr checks an address other replicas dial: host:port whose host
// is not a wildcard such as 0.0.0.0, which the Raft transport cannot
// advertise.
func checkRaftAddr(name, v string) error {
	if err := checkHostPort(name, v); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(v)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("%s = %q: host must be an address the other replicas can reach, not the wildcard %s", name, v, host)
	}
	return nil
}

func checkPeers(name, v string) error {
	if v == "" {
		return nil
	}
	ids := map[string]bool{}
	addrs := map[string]string{}
	for _, part := range strings.Split(v, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || !idRE.MatchString(id) {
			return fmt.Errorf("%s: %q is not id=host:port (id of [a-z0-9-], up to 63 characters)", name, part)
		}
		if ids[id] {
			return fmt.Errorf("%s: id %q appears twice", name, id)
		}
		ids[id] = true
		if err := checkRaftAddr(name+" ("+id+")", addr); err != nil {
			return err
		}
		if other, dup := addrs[addr]; dup {
			return fmt.Errorf("%s: %s and %s have the same address %s", name, other, id, addr)
		}
		addrs[addr] = id
	}
	return nil
}

func checkURL(name, v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s = %q is not an http:// or https:// URL with a host", name, v)
	}
	return nil
}

func checkToken(name, v string) error {
	if v != "" && len(v) < 16 {
		return fmt.Errorf("%s must be at least 16 characters when set (it has %d)", name, len(v))
	}
	return nil
}

func oneOf(allowed ...string) func(name, v string) error {
	return func(name, v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("%s = %q is not one of %s", name, v, strings.Join(allowed, ", "))
	}
}

// keys lists every key with its default and range. It is built on each
// call: the table is data, not shared state.
func keys() []key {
	return []key{
		stringKey("server.node_id", "", func(c *Config) *string { return &c.Server.NodeID }, checkNodeID),
		stringKey("server.data_dir", "./data", func(c *Config) *string { return &c.Server.DataDir }, checkRequired),
		stringKey("server.raft_addr", "127.0.0.1:7001", func(c *Config) *string { return &c.Server.RaftAddr }, checkRaftAddr),
		stringKey("server.api_addr", "127.0.0.1:8001", func(c *Config) *string { return &c.Server.APIAddr }, checkHostPort),
		stringKey("server.advertise_api", "", func(c *Config) *string { return &c.Server.AdvertiseAPI }, checkURL),
		stringKey("server.peers", "", func(c *Config) *string { return &c.Server.Peers }, checkPeers),
		stringKey("server.agent_token", "", func(c *Config) *string { return &c.Server.AgentToken }, checkToken),
		stringKey("server.peer_token", "", func(c *Config) *string { return &c.Server.PeerToken }, checkToken),
		stringKey("server.admin_token_file", "", func(c *Config) *string { return &c.Server.AdminTokenFile }, nil),
		stringKey("server.secret_key_file", "", func(c *Config) *string { return &c.Server.SecretKeyFile }, nil),

		durationKey("ha.probe_interval", 500*time.Millisecond, 50*time.Millisecond, time.Minute, func(c *Config) *time.Duration { return &c.HA.ProbeInterval }),
		durationKey("ha.probe_timeout", 500*time.Millisecond, 50*time.Millisecond, time.Minute, func(c *Config) *time.Duration { return &c.HA.ProbeTimeout }),
		intKey[int]("ha.failure_threshold", 3, 1, 100, func(c *Config) *int { return &c.HA.FailureThreshold }),
		durationKey("ha.rejoin_backoff", 10*time.Second, time.Second, time.Hour, func(c *Config) *time.Duration { return &c.HA.RejoinBackoff }),
		durationKey("ha.lease_ttl", 1500*time.Millisecond, 300*time.Millisecond, time.Minute, func(c *Config) *time.Duration { return &c.HA.LeaseTTL }),
		boolKey("ha.rebuild_on_rewind_failure", true, func(c *Config) *bool { return &c.HA.RebuildOnRewindFailure }),

		durationKey("raft.heartbeat_timeout", 300*time.Millisecond, 50*time.Millisecond, 10*time.Second, func(c *Config) *time.Duration { return &c.Raft.HeartbeatTimeout }),
		durationKey("raft.election_timeout", 300*time.Millisecond, 50*time.Millisecond, 10*time.Second, func(c *Config) *time.Duration { return &c.Raft.ElectionTimeout }),
		durationKey("raft.leader_lease_timeout", 300*time.Millisecond, 10*time.Millisecond, 10*time.Second, func(c *Config) *time.Duration { return &c.Raft.LeaderLeaseTimeout }),
		durationKey("raft.commit_timeout", 20*time.Millisecond, time.Millisecond, time.Second, func(c *Config) *time.Duration { return &c.Raft.CommitTimeout }),
		durationKey("raft.snapshot_interval", 30*time.Second, time.Second, 24*time.Hour, func(c *Config) *time.Duration { return &c.Raft.SnapshotInterval }),
		intKey[uint64]("raft.snapshot_threshold", 8192, 16, 10_000_000, func(c *Config) *uint64 { return &c.Raft.SnapshotThreshold }),
		intKey[uint64]("raft.trailing_logs", 10240, 0, 10_000_000, func(c *Config) *uint64 { return &c.Raft.TrailingLogs }),
		intKey[int]("raft.max_append_entries", 64, 1, 1024, func(c *Config) *int { return &c.Raft.MaxAppendEntries }),
		durationKey("raft.apply_timeout", 10*time.Second, 100*time.Millisecond, 5*time.Minute, func(c *Config) *time.Duration { return &c.Raft.ApplyTimeout }),

		intKey[int64]("api.max_body_bytes", 1<<20, 1024, 64<<20, func(c *Config) *int64 { return &c.API.MaxBodyBytes }),
		durationKey("api.read_timeout", 10*time.Second, time.Second, 10*time.Minute, func(c *Config) *time.Duration { return &c.API.ReadTimeout }),
		durationKey("api.write_timeout", 30*time.Second, time.Second, 10*time.Minute, func(c *Config) *time.Duration { return &c.API.WriteTimeout }),
		durationKey("api.forward_timeout", 10*time.Second, 100*time.Millisecond, 5*time.Minute, func(c *Config) *time.Duration { return &c.API.ForwardTimeout }),
		durationKey("api.shutdown_timeout", 10*time.Second, time.Second, 5*time.Minute, func(c *Config) *time.Duration { return &c.API.ShutdownTimeout }),

		stringKey("tls.cert_file", "", func(c *Config) *string { return &c.TLS.CertFile }, nil),
		stringKey("tls.key_file", "", func(c *Config) *string { return &c.TLS.KeyFile }, nil),
		stringKey("tls.ca_file", "", func(c *Config) *string { return &c.TLS.CAFile }, nil),

		durationKey("backup.min_interval", time.Hour, time.Minute, 7*24*time.Hour, func(c *Config) *time.Duration { return &c.Backup.MinInterval }),

		stringKey("log.level", "info", func(c *Config) *string { return &c.Log.Level }, oneOf("debug", "info", "warn", "error")),
		stringKey("log.format", "text", func(c *Config) *string { return &c.Log.Format }, oneOf("text", "json")),
	}
}

// flagKeys maps server flags to the keys they override.
func flagKeys() map[string]string {
	return map[string]string{
		"node-id":     "server.node_id",
		"data-dir":    "server.data_dir",
		"raft-addr":   "server.raft_addr",
		"api-addr":    "server.api_addr",
		"peers":       "server.peers",
		"agent-token": "server.agent_token",
		"peer-token":  "server.peer_token",

		"admin-token-file": "server.admin_token_file",
		"secret-key-file":  "server.secret_key_file",
	}
}

// EnvPrefix prefixes the environment variables that override the file:
// CLUSTERMGR_<SECTION>_<KEY>, e.g. CLUSTERMGR_RAFT_HEARTBEAT_TIMEOUT.
const EnvPrefix = "CLUSTERMGR_"

// EnvName returns the environment variable of a key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// Defaults returns the configuration with every default (node_id empty).
func Defaults() Config {
	c, err := Load("", nil, nil)
	if err != nil {
		// The defaults are constants of this file; failing to read them is
		// a programming error.
		panic(fmt.Sprintf("config defaults: %v", err))
	}
	return c
}

// Load reads the file at path (none when path is empty), then lets env
// (os.Environ() form) override it, then the flags that were set. It does not
// validate ranges: call Validate.
func Load(path string, env []string, flags *pflag.FlagSet) (Config, error) {
	v := viper.New()
	v.SetConfigType("toml")
	ks := keys()
	known := map[string]bool{}
	for _, k := range ks {
		v.SetDefault(k.name, k.def)
		known[k.name] = true
	}
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			// The *PathError names the path.
			return Config{}, fmt.Errorf("config file: %w", err)
		}
		err = v.ReadConfig(f)
		f.Close()
		if err != nil {
			return Config{}, fmt.Errorf("read config file %s: %w", path, err)
		}
		var unknown []string
		for _, k := range v.AllKeys() {
			if !known[k] {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return Config{}, fmt.Errorf("config file %s: unknown key(s) %s", path, strings.Join(unknown, ", "))
		}
	}
	envVals := map[string]string{}
	for _, kv := range env {
		if name, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, EnvPrefix) {
			envVals[name] = val
		}
	}
	for _, k := range ks {
		if val, ok := envVals[EnvName(k.name)]; ok {
			v.Set(k.name, val)
		}
	}
	if flags != nil {
		for flag, k := range flagKeys() {
			if f := flags.Lookup(flag); f != nil && f.Changed {
				v.Set(k, f.Value.String())
			}
		}
	}
	var c Config
	var errs []error
	for _, k := range ks {
		if err := k.set(&c, v); err != nil {
			errs = append(errs, err)
		}
	}
	return c, errors.Join(errs...)
}

// Validate checks every key against its range and the rules between keys.
// Each error names the key.
func (c Config) Validate() error {
	var errs []error
	for _, k := range keys() {
		if k.check != nil {
			if err := k.check(&c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if c.Raft.LeaderLeaseTimeout > c.Raft.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("raft.leader_lease_timeout = %s must not exceed raft.heartbeat_timeout = %s", fmtDuration(c.Raft.LeaderLeaseTimeout), fmtDuration(c.Raft.HeartbeatTimeout)))
	}
	if set := btoi(c.TLS.CertFile != "") + btoi(c.TLS.KeyFile != "") + btoi(c.TLS.CAFile != ""); set != 0 && set != 3 {
		errs = append(errs, fmt.Errorf("tls.cert_file, tls.key_file and tls.ca_file are set together or not at all"))
	}
	// hashicorp/raft refuses to start otherwise.
	if c.Raft.ElectionTimeout < c.Raft.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("raft.election_timeout = %s must be at least raft.heartbeat_timeout = %s", fmtDuration(c.Raft.ElectionTimeout), fmtDuration(c.Raft.HeartbeatTimeout)))
	}
	return errors.Join(errs...)
}

// AdminTokenPath is the file of the group's first admin token.
func (c Config) AdminTokenPath() string {
	if c.Server.AdminTokenFile != "" {
		return c.Server.AdminTokenFile
	}
	return filepath.Join(c.Server.DataDir, "admin.token")
}

// SecretKeyPath is the file of the keys that seal the group's secrets.
func (c Config) SecretKeyPath() string {
	if c.Server.SecretKeyFile != "" {
		return c.Server.SecretKeyFile
	}
	return filepath.Join(c.Server.DataDir, "secret.key")
}

// SlogLevel returns the configured log level.
func (c Config) SlogLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Log.Level)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// NewLogger returns a logger writing to w in the configured format and level.
func (c Config) NewLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
