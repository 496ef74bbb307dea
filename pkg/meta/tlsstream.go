package meta

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tlsStream is a raft.StreamLayer over mutual TLS: a replica accepts and
// dials only peers whose certificates chain to the group's CA.
type tlsStream struct {
	ln        net.Listener
	advertise net.Addr
	cfg       *tls.Config
}

func newTLSStream(bind string, advertise net.Addr, cfg *tls.Config) (*tlsStream, error) {
	ln, err := tls.Listen("tcp", bind, cfg)
	if err != nil {
		return nil, fmt.Errorf("listen on raft address %s: %w", bind, err)
	}
	return &tlsStream{ln: ln, advertise: advertise, cfg: cfg}, nil
}

// Accept implements net.Listener. The handshake runs on the connection's
// first read, in raft's connection goroutine: a peer that fails it is
// dropped there.
func (s *tlsStream) Accept() (net.Conn, error) { return s.ln.Accept() }

// Close implements net.Listener.
func (s *tlsStream) Close() error { return s.ln.Close() }

// Addr implements net.Listener: the advertised address.
func (s *tlsStream) Addr() net.Addr { return s.advertise }

// Dial implements raft.StreamLayer, checking the peer's certificate for
// the host of its Raft address.
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	host, _, err := net.SplitHostPort(string(address))
	if err != nil {
		return nil, err
	}
	cfg := s.cfg.Clone()
	cfg.ServerName = host
	d := &net.Dialer{Timeout: timeout}
	conn, err := tls.DialWithDialer(d, "tcp", string(address), cfg)
	if err != nil {
		return nil, err
	}
	return conn, nil
}
