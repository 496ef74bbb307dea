package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Bundle is a replica's certificate and the CA its peers' certificates
// must chain to.
type Bundle struct {
	cert tls.Certificate
	pool *x509.CertPool
}

// Load reads the PEM certificate and key and the PEM CA file.
func Load(certFile, keyFile, caFile string) (*Bundle, error) {
	if certFile == "" || keyFile == "" || caFile == "" {
		return nil, errors.New("a certificate, its key and the CA file are all needed")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s and key %s: %w", certFile, keyFile, err)
	}
	pool, err := LoadCA(caFile)
	if err != nil {
		return nil, err
	}
	return &Bundle{cert: cert, pool: pool}, nil
}

// LoadCA reads a PEM file of CA certificates.
func LoadCA(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
	}
	return pool, nil
}

// Peer is the configuration between replicas: each side shows its
// certificate and accepts only one from the group's CA.
func (b *Bundle) Peer() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{b.cert},
		RootCAs:      b.pool,
		ClientCAs:    b.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
}

// API is the REST API's server configuration: clients need no
// certificate (they show a token).
func (b *Bundle) API() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{b.cert}}
}

// Client is what a replica dials another with (forwarded requests,
// views, its member record): the group's CA, and its own certificate.
func (b *Bundle) Client() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{b.cert}, RootCAs: b.pool}
}
