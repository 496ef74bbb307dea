package pgtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clustermgr/clustermgr/pkg/pgctl"
)

// Server is one PostgreSQL server started by the harness.
type Server struct {
	Name    string
	Host    string
	Port    int
	DataDir string
	// Password is postgres's password, for servers that want one (those
	// an agent provisioned: scram-sha-256 over TCP).
	Password string
	runner   *pgctl.Runner
	t        testing.TB
}

// Env is a directory of servers sharing one runner.
type Env struct {
	t      testing.TB
	Runner *pgctl.Runner
	Dir    string
}

// NewEnv finds the PostgreSQL binaries and makes a directory the database
// OS user owns. It skips the test under -short, and when no binaries are
// found and PGTEST_REQUIRE is unset.
func NewEnv(t testing.TB) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("starts PostgreSQL: not a unit test (-short)")
	}
	bin, err := pgctl.FindBinDir(os.LookupEnv)
	if err == nil {
		_, err = os.Stat(filepath.Join(bin, "initdb"))
	}
	if err != nil {
		if os.Getenv("PGTEST_REQUIRE") != "" {
			t.Fatalf("PostgreSQL binaries: %v", err)
		}
		t.Skipf("PostgreSQL binaries not found: %v", err)
	}
	r, err := pgctl.NewRunner(bin, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := r.Chown(dir); err != nil {
		t.Fatal(err)
	}
	e := &Env{t: t, Runner: r, Dir: dir}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return e
}

// FreePorts returns n distinct free TCP ports on 127.0.0.1 for servers.
// A server a test stops and starts again must find its port free, and a
// port of the kernel's ephemeral range may meanwhile be the local port of
// any outgoing connection (every client of every test): server ports come
// from below that range, where the kernel never puts one. A process hands
// each port out once (a cursor from a random start walks the range), so
// two calls never return the same port while the range lasts; another
// test process starts elsewhere, and a port in use is skipped.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	lo, hi := 10000, ephemeralLow()
	span := int64(hi - lo)
	portCursor.CompareAndSwap(0, 1+rand.Int64N(span))
	ports := make([]int, 0, n)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries > 10000 {
			t.Fatalf("no free port in %d-%d", lo, hi-1)
		}
		p := lo + int(portCursor.Add(1)%span)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		lns = append(lns, ln)
		ports = append(ports, p)
	}
	return ports
}

// portCursor is the process's walk over the server port range: the one
// piece of package state of the test helpers, so that ports are handed
// out once per process whichever test asks.
var portCursor atomic.Int64

// FreePort returns a free TCP port on 127.0.0.1 for a server (see
// FreePorts).
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read).
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo <= 11000 {
		return 32768
	}
	return lo
}

// settings are appended to every server's postgresql.conf: small, fast,
// replication ready, and quick to notice a dead or hung upstream. WAL
// archiving is on and discards (a test may set a failing archive_command).
func settings(port int, socketDir string) string {
	return fmt.Sprintf(`
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
max_connections = 40
shared_buffers = 16MB
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = 256MB
hot_standby = on
wal_log_hints = on
fsync = off
full_page_writes = on
wal_receiver_timeout = 3s
wal_receiver_status_interval = 1s
wal_sender_timeout = 3s
wal_retrieve_retry_interval = 500ms
logging_collector = off
log_min_messages = warning
archive_mode = on
archive_command = '/bin/true'
`, port, socketDir)
}

// StartPrimary initdbs and starts a primary named name.
func (e *Env) StartPrimary(name string) *Server {
	e.t.Helper()
	s := e.newServer(name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := e.Runner.Run(ctx, "initdb", "-D", s.DataDir, "-U", "postgres", "--auth=trust", "--data-checksums", "-E", "UTF8", "--locale=C.UTF-8"); err != nil {
		e.t.Fatal(err)
	}
	e.appendConf(s, settings(s.Port, filepath.Dir(s.DataDir)))
	hba := "host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"
	if err := os.WriteFile(filepath.Join(s.DataDir, "pg_hba.conf"), []byte("local all all trust\n"+hba), 0o600); err != nil {
		e.t.Fatal(err)
	}
	s.start()
	return s
}

// StartStandby makes a standby of upstream with pg_basebackup -R, its
// application_name set to name, and starts it.
func (e *Env) StartStandby(name string, upstream *Server) *Server {
	e.t.Helper()
	s := e.newServer(name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := e.Runner.Run(ctx, "pg_basebackup", "-h", upstream.Host, "-p", fmt.Sprint(upstream.Port), "-U", "postgres",
		"-D", s.DataDir, "-X", "stream", "-R", "-c", "fast"); err != nil {
		e.t.Fatal(err)
	}
	e.appendConf(s, settings(s.Port, filepath.Dir(s.DataDir)))
	// pg_basebackup -R wrote primary_conninfo into postgresql.auto.conf,
	// which is read last; a later line there names this standby.
	e.appendFile(s, "postgresql.auto.conf", fmt.Sprintf("primary_conninfo = '%s'\n", ConnInfo(upstream.Host, upstream.Port, name)))
	s.start()
	return s
}

// ConnInfo is the primary_conninfo of a standby named appName streaming
// from host:port.
func ConnInfo(host string, port int, appName string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres application_name=%s connect_timeout=2", host, port, appName)
}

// Adopt returns a Server for a PostgreSQL server made by someone else (an
// agent, say) in dataDir, and stops it in t.Cleanup.
func (e *Env) Adopt(name, host string, port int, dataDir string) *Server {
	s := &Server{Name: name, Host: host, Port: port, DataDir: dataDir, runner: e.Runner, t: e.t}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = pgctl.Kill(s.DataDir, syscall.SIGCONT)
		_ = e.Runner.Stop(ctx, s.DataDir, "immediate")
	})
	return s
}

func (e *Env) newServer(name string) *Server {
	e.t.Helper()
	base := filepath.Join(e.Dir, name)
	if err := os.Mkdir(base, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := e.Runner.Chown(base); err != nil {
		e.t.Fatal(err)
	}
	s := &Server{Name: name, Host: "127.0.0.1", Port: FreePort(e.t), DataDir: filepath.Join(base, "data"), runner: e.Runner, t: e.t}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = pgctl.Kill(s.DataDir, syscall.SIGCONT)
		_ = e.Runner.Stop(ctx, s.DataDir, "immediate")
	})
	return s
}

func (e *Env) appendConf(s *Server, text string) {
	e.t.Helper()
	e.appendFile(s, "postgresql.conf", text)
}

func (e *Env) appendFile(s *Server, name, text string) {
	e.t.Helper()
	f, err := os.OpenFile(filepath.Join(s.DataDir, name), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		e.t.Fatal(err)
	}
}

func (s *Server) start() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.runner.Start(ctx, s.DataDir); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.DataDir, "log", "postgresql.log"))
		s.t.Fatalf("%v\n%s", err, log)
	}
}

// DSN is a connection string to the server as postgres.
func (s *Server) DSN() string {
	dsn := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=2", s.Host, s.Port)
	if s.Password != "" {
		dsn += " password='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s.Password) + "'"
	}
	return dsn
}

// Addr is host:port.
func (s *Server) Addr() string { return fmt.Sprintf("%s:%d", s.Host, s.Port) }

// Connect opens a connection.
func (s *Server) Connect(ctx context.Context) (*pgx.Conn, error) {
	return pgx.Connect(ctx, s.DSN())
}

// Exec runs sql on a fresh connection and fails the test on error.
func (s *Server) Exec(sql string, args ...any) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := s.Connect(ctx)
	if err != nil {
		s.t.Fatalf("connect to %s: %v", s.Name, err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		s.t.Fatalf("%s on %s: %v", sql, s.Name, err)
	}
}

// QueryInt runs a query returning one integer.
func (s *Server) QueryInt(sql string, args ...any) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := s.Connect(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close(ctx)
	var n int64
	err = c.QueryRow(ctx, sql, args...).Scan(&n)
	return n, err
}

// InRecovery reports pg_is_in_recovery().
func (s *Server) InRecovery() (bool, error) {
	n, err := s.QueryInt("SELECT CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END")
	return n == 1, err
}

// KillPostmaster sends SIGKILL to the postmaster alone, as a crash of the
// server process would; its children exit when they notice.
func (s *Server) KillPostmaster() {
	s.t.Helper()
	pid, alive := pgctl.PostmasterPID(s.DataDir)
	if !alive {
		s.t.Fatalf("%s: no postmaster", s.Name)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		s.t.Fatal(err)
	}
}

// Crash sends SIGKILL to the postmaster and every child, as a crash of the
// whole server (or its host) would.
func (s *Server) Crash() {
	s.t.Helper()
	if err := pgctl.Kill(s.DataDir, syscall.SIGKILL); err != nil {
		s.t.Fatal(err)
	}
}

// Freeze sends SIGSTOP to the postmaster and every child: the port stays
// open but nothing answers, not even established connections.
func (s *Server) Freeze() {
	s.t.Helper()
	if err := pgctl.Kill(s.DataDir, syscall.SIGSTOP); err != nil {
		s.t.Fatal(err)
	}
}

// Thaw sends SIGCONT to the postmaster and every child.
func (s *Server) Thaw() {
	s.t.Helper()
	if err := pgctl.Kill(s.DataDir, syscall.SIGCONT); err != nil {
		s.t.Fatal(err)
	}
}

// Log returns the server log.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.DataDir, "log", "postgresql.log"))
	return strings.TrimSpace(string(b))
}
