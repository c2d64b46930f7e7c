package client_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/client"
	"github.com/pushfabric/pushfabric/internal/testcert"
)

// startTLSEdge runs an edge in development mode whose listeners speak
// TLS with a certificate for 127.0.0.1 that ca signed.
func startTLSEdge(t *testing.T) (*testNode, *testcert.CA) {
	t.Helper()
	ca, p := testcert.Loopback(t)
	cert, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	o := edge.Options{Config: edge.DefaultConfig(), Auth: edge.DevAuth{}, Node: "A",
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	return startEdgeWith(t, "127.0.0.1:0", "127.0.0.1:0", o), ca
}

// Dial speaks wss:// and tls:// to an edge whose certificate it trusts,
// and receives pushes; Connect takes the same addresses.
func TestDialTLS(t *testing.T) {
	n, ca := startTLSEdge(t)
	trust := &tls.Config{RootCAs: ca.Pool()}
	for _, addr := range []string{n.ws, n.tcp} {
		c, err := client.Dial(t.Context(), addr, client.Options{Session: "me", TLSConfig: trust})
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		n.push(t, "me", "p-"+addr)
		f, err := c.Recv(t.Context())
		if err != nil || f.ID != "p-"+addr {
			t.Fatalf("%s: push %q, %v; want p-%s", addr, f.ID, err, addr)
		}
		c.Close()
		waitFor(t, "the session gone", func() bool { return n.srv.Registry().Get("me") == nil })
	}
	s, err := client.Connect(t.Context(), n.tcp, client.Options{Session: "again", TLSConfig: trust}, fast)
	if err != nil {
		t.Fatalf("connect %s: %v", n.tcp, err)
	}
	n.push(t, "again", "q")
	if f, err := s.Recv(t.Context()); err != nil || f.ID != "q" {
		t.Fatalf("session: push %q, %v; want q", f.ID, err)
	}
	s.Close()
}

// A client that does not trust the edge's authority fails its TLS
// handshake, on either transport.
func TestDialTLSUntrusted(t *testing.T) {
	n, _ := startTLSEdge(t)
	for _, addr := range []string{n.ws, n.tcp} {
		_, err := client.Dial(t.Context(), addr, client.Options{Session: "me"})
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("dial %s without the CA: %v; want an unknown authority", addr, err)
		}
	}
}

// A reconnecting session to an edge whose certificate it does not trust
// stops at once, saying why, instead of trying again: no attempt can fare
// better.
func TestConnectUntrustedStops(t *testing.T) {
	n, _ := startTLSEdge(t)
	_, err := client.Connect(t.Context(), n.tcp, client.Options{Session: "me"}, fast)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("connect without the CA: %v; want it to stop with an unknown authority", err)
	}
}
