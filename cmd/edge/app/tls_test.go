package app

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/pushfabric/pushfabric/internal/testcert"
)

// testPair writes a certificate for 127.0.0.1 and localhost and its key
// into a test directory; ca signed it.
func testPair(t *testing.T) (certFile, keyFile string, ca *testcert.CA) {
	t.Helper()
	ca, p := testcert.Loopback(t)
	certFile, keyFile = p.Write(t, t.TempDir())
	return certFile, keyFile, ca
}

// httpsClient trusts ca only.
func httpsClient(ca *testcert.CA) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}}}
}

// Validate wants the certificate and key together, as a pair that loads,
// and the admin listener's TLS only with them.
func TestValidateTLS(t *testing.T) {
	certFile, keyFile, _ := testPair(t)
	otherCert, _, _ := testPair(t)
	for _, c := range []struct {
		what, cert, key string
		admin           bool
		want            string // in the error; "" for none
	}{
		{"a pair", certFile, keyFile, true, ""},
		{"a certificate alone", certFile, "", false, "TLSCert and TLSKey go together"},
		{"a key alone", "", keyFile, false, "TLSCert and TLSKey go together"},
		{"admin TLS alone", "", "", true, "AdminTLS and TLSCert go together"},
		{"no such files", certFile + ".gone", keyFile, false, "TLSCert and TLSKey are not a usable pair: open"},
		{"a key of another certificate", otherCert, keyFile, false, "TLSCert and TLSKey are not a usable pair: tls: private key does not match public key"},
	} {
		cfg := DefaultConfig()
		cfg.TLSCert, cfg.TLSKey, cfg.AdminTLS = c.cert, c.key, c.admin
		err := cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v; want none", c.what, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v; want %q", c.what, err, c.want)
		}
	}
}

// TLS does not lift the loopback rule: a client listener off loopback
// still needs a JWT key.
func TestTLSOffLoopbackNeedsAKey(t *testing.T) {
	certFile, keyFile, _ := testPair(t)
	cfg := DefaultConfig()
	cfg.TLSCert, cfg.TLSKey, cfg.WSListen = certFile, keyFile, "0.0.0.0:8443"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "not on loopback") {
		t.Fatalf("Validate: %v; want the loopback rule", err)
	}
}
