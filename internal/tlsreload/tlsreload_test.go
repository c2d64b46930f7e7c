package tlsreload

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pushfabric/pushfabric/internal/testcert"
)

// files are a certificate and key file pair in a test's directory.
type files struct {
	t         *testing.T
	cert, key string
	mod       time.Time // the next modification time set
}

func newFiles(t *testing.T) *files {
	dir := t.TempDir()
	return &files{t: t, cert: filepath.Join(dir, "tls.crt"), key: filepath.Join(dir, "tls.key"), mod: time.Unix(1e9, 0)}
}

// write replaces a file, with a modification time later than any before:
// the file system's clock is too coarse to tell writes a moment apart.
func (f *files) write(name string, data []byte) {
	f.t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		f.t.Fatal(err)
	}
	f.mod = f.mod.Add(time.Second)
	if err := os.Chtimes(name, f.mod, f.mod); err != nil {
		f.t.Fatal(err)
	}
}

func (f *files) writePair(p testcert.Pair) {
	f.write(f.cert, p.CertPEM)
	f.write(f.key, p.KeyPEM)
}

func leaf(t *testing.T, ca *testcert.CA) testcert.Pair {
	t.Helper()
	p, err := ca.Leaf("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// serial is the serial of the certificate c serves.
func serial(t *testing.T, c *Certificate) string {
	t.Helper()
	cert, err := c.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return cert.Leaf.SerialNumber.String()
}

// A changed pair is served once the interval has passed, not before; a
// broken one keeps the last good pair and counts one error per change; a
// certificate written before its key loads once the key follows.
func TestReload(t *testing.T) {
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	p1, p2, p3 := leaf(t, ca), leaf(t, ca), leaf(t, ca)
	synctest.Test(t, func(t *testing.T) {
		f := newFiles(t)
		f.writePair(p1)
		var reloaded []string
		var failed []error
		c, err := New(f.cert, f.key, Options{
			OnReload: func(l *x509.Certificate) { reloaded = append(reloaded, l.SerialNumber.String()) },
			OnError:  func(err error) { failed = append(failed, err) },
		})
		if err != nil {
			t.Fatal(err)
		}
		f.writePair(p2)
		if got := serial(t, c); got != p1.Serial.String() {
			t.Fatalf("within the interval: serial %s, want the first pair's %s", got, p1.Serial)
		}
		time.Sleep(DefaultInterval)
		if got := serial(t, c); got != p2.Serial.String() || len(reloaded) != 1 {
			t.Fatalf("after the interval: serial %s (reloads %v), want the new pair's %s", got, reloaded, p2.Serial)
		}
		if s := c.Stats(); !s.NotAfter.Equal(p2.NotAfter) || s.ReloadErrors != 0 {
			t.Fatalf("stats %+v; want the new pair's expiry %v and no errors", s, p2.NotAfter)
		}

		f.write(f.cert, []byte("not a certificate"))
		for range 3 {
			time.Sleep(DefaultInterval)
			if got := serial(t, c); got != p2.Serial.String() {
				t.Fatalf("broken certificate: serial %s, want the last good %s", got, p2.Serial)
			}
		}
		if n := c.Stats().ReloadErrors; n != 1 || len(failed) != 1 {
			t.Fatalf("broken certificate: %d errors (%v), want 1, counted once", n, failed)
		}

		f.write(f.cert, p3.CertPEM) // its key not there yet
		time.Sleep(DefaultInterval)
		if got := serial(t, c); got != p2.Serial.String() || c.Stats().ReloadErrors != 2 {
			t.Fatalf("certificate without its key: serial %s, errors %d; want %s, 2", got, c.Stats().ReloadErrors, p2.Serial)
		}
		f.write(f.key, p3.KeyPEM)
		time.Sleep(DefaultInterval)
		if got := serial(t, c); got != p3.Serial.String() || c.Leaf().SerialNumber.String() != got {
			t.Fatalf("key followed: serial %s, want %s", got, p3.Serial)
		}
	})
}

// New fails when the pair does not load: no file, no pair.
func TestNewFails(t *testing.T) {
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := leaf(t, ca), leaf(t, ca)
	f := newFiles(t)
	if _, err := New(f.cert, f.key, Options{}); err == nil {
		t.Fatal("no files: New succeeded")
	}
	f.write(f.cert, p1.CertPEM)
	f.write(f.key, p2.KeyPEM)
	if _, err := New(f.cert, f.key, Options{}); err == nil {
		t.Fatal("certificate and key of different pairs: New succeeded")
	}
}

// ServerConfig refuses versions before TLS 1.2 and serves the pair.
func TestServerConfig(t *testing.T) {
	ca, err := testcert.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	f := newFiles(t)
	p := leaf(t, ca)
	f.writePair(p)
	c, err := New(f.cert, f.key, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.ServerConfig()
	if cfg.MinVersion != 0x0303 {
		t.Fatalf("MinVersion %#x, want TLS 1.2", cfg.MinVersion)
	}
	if got, _ := cfg.GetCertificate(nil); got.Leaf.SerialNumber.Cmp(p.Serial) != 0 {
		t.Fatalf("serves serial %s, want %s", got.Leaf.SerialNumber, p.Serial)
	}
}
