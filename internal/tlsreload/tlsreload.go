// Package tlsreload serves a TLS certificate and key pair from two files
// and reads them again when either changes, so that a renewed certificate
// (cert-manager, certbot) takes effect without a restart. It imports only
// the standard library.
package tlsreload

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// DefaultInterval is how often, at most, the files are looked at.
const DefaultInterval = time.Second

// Options tune a Certificate. The zero value works.
type Options struct {
	// Interval is the least time between two looks at the files (a stat
	// of each, done by the handshake that finds the last look older); 0:
	// DefaultInterval.
	Interval time.Duration
	// OnError, if set, is told why a changed pair did not load; the last
	// good pair stays in use. It runs on the handshake's goroutine, once
	// per change of the files.
	OnError func(error)
	// OnReload, if set, is told of each new pair loaded after the first,
	// with its leaf certificate, on the handshake's goroutine.
	OnReload func(*x509.Certificate)
}

// Stats are a Certificate's figures.
type Stats struct {
	ReloadErrors uint64    // changed pairs that did not load
	NotAfter     time.Time // the expiry of the pair in use
}

// Certificate is a certificate and key pair read from files, read again
// when either file's modification time or size has changed, looked at no
// more often than Options.Interval. A changed pair that does not load
// (unreadable, not PEM, key and certificate not a pair, a half-written
// file) leaves the last good one in use; the next change is tried again.
// Its methods are safe for concurrent use.
type Certificate struct {
	certFile, keyFile string
	o                 Options

	mu      sync.Mutex
	cert    *tls.Certificate // guarded by mu: the pair in use, its Leaf set
	stamps  [2]stamp         // guarded by mu: the files as last looked at
	checked time.Time        // guarded by mu: when they were looked at
	errors  uint64           // guarded by mu: Stats.ReloadErrors
}

// stamp is what tells a file changed.
type stamp struct {
	mod  int64 // modification time, Unix nanoseconds
	size int64
}

// New reads the pair from certFile and keyFile (PEM), failing if it does
// not load.
func New(certFile, keyFile string, o Options) (*Certificate, error) {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	c := &Certificate{certFile: certFile, keyFile: keyFile, o: o}
	stamps, _ := c.stat() // a file that cannot be stat'ed does not load either
	cert, err := Load(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	c.cert, c.stamps, c.checked = cert, stamps, time.Now()
	return c, nil
}

// Load reads a certificate and key pair (PEM) and parses its leaf.
func Load(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load %s and %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("load %s: %w", certFile, err)
		}
	}
	return &cert, nil
}

// GetCertificate is for tls.Config.GetCertificate: the pair in use, read
// again first if the files changed since they were last looked at.
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.checked) >= c.o.Interval {
		c.checked = now
		c.refresh()
	}
	return c.cert, nil
}

// refresh loads the pair again if a file changed. Called with mu held.
func (c *Certificate) refresh() {
	stamps, err := c.stat()
	if err == nil && stamps == c.stamps {
		return
	}
	cert, lerr := Load(c.certFile, c.keyFile)
	if err == nil && lerr == nil {
		c.cert, c.stamps = cert, stamps
		if c.o.OnReload != nil {
			c.o.OnReload(cert.Leaf)
		}
		return
	}
	// Counted once per change: the failed stamps are kept, so the same
	// broken files are not tried (and counted) again each interval.
	c.stamps = stamps
	c.errors++
	if c.o.OnError != nil {
		c.o.OnError(cmpErr(err, lerr))
	}
}

// cmpErr is the first of a and b that is not nil.
func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// stat looks at both files; a file that cannot be stat'ed gets a zero
// stamp, and the error.
func (c *Certificate) stat() ([2]stamp, error) {
	var out [2]stamp
	var errs []error
	for i, name := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("reload certificate: %w", err))
			continue
		}
		out[i] = stamp{fi.ModTime().UnixNano(), fi.Size()}
	}
	return out, errors.Join(errs...)
}

// Leaf is the certificate in use.
func (c *Certificate) Leaf() *x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert.Leaf
}

// Stats reads the figures.
func (c *Certificate) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{ReloadErrors: c.errors, NotAfter: c.cert.Leaf.NotAfter}
}

// ServerConfig is a TLS server configuration serving c, TLS 1.2 at least:
// the oldest version without known weaknesses in its modern cipher
// suites, which Go's defaults pick, and what clients still on 1.2 speak.
func (c *Certificate) ServerConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.GetCertificate}
}
