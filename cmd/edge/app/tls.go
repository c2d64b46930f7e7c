package app

import (
	"crypto/tls"
	"crypto/x509"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/internal/check"
	"github.com/pushfabric/pushfabric/internal/tlsreload"
)

// validateTLS checks the TLS fields: the certificate and key together, a
// pair that loads, and AdminTLS only with them.
func (cfg Config) validateTLS() []error {
	errs := check.Together(nil, "TLSCert", cfg.TLSCert != "", "TLSKey", cfg.TLSKey != "")
	if cfg.AdminTLS && cfg.TLSCert == "" {
		errs = append(errs, &check.FieldError{Field: "AdminTLS", With: "TLSCert",
			Problem: "go together: the admin listener's TLS serves the client listeners' certificate and key"})
	}
	if cfg.TLSCert == "" || cfg.TLSKey == "" {
		return errs
	}
	if _, err := tlsreload.Load(cfg.TLSCert, cfg.TLSKey); err != nil {
		errs = append(errs, &check.FieldError{Field: "TLSCert", With: "TLSKey", Problem: "are not a usable pair: " + errors.Unwrap(err).Error()})
	}
	return errs
}

// nodeTLS is the TLS configurations of the node's listeners, serving its
// certificate, read again when its files change.
type nodeTLS struct {
	client *tls.Config // the client listeners'; nil: plain
	admin  *tls.Config // the admin listener's; nil: plain
}

// newNodeTLS reads cfg's certificate, if any, and registers its metrics
// on reg: the zero nodeTLS without. A pair that changes and does not load
// is logged; the last good one stays in use.
func newNodeTLS(cfg Config, log *zap.Logger, reg prometheus.Registerer) (nodeTLS, error) {
	if cfg.TLSCert == "" {
		return nodeTLS{}, nil
	}
	log = log.Named("tls")
	cert, err := tlsreload.New(cfg.TLSCert, cfg.TLSKey, tlsreload.Options{
		OnError: func(err error) {
			log.Error("TLS certificate files changed but do not load; serving the last good pair", zap.Error(err))
		},
		OnReload: func(leaf *x509.Certificate) {
			log.Info("TLS certificate reloaded", zap.String("serial", leaf.SerialNumber.String()), zap.Time("not_after", leaf.NotAfter))
		},
	})
	if err != nil {
		return nodeTLS{}, err
	}
	t := nodeTLS{client: cert.ServerConfig()}
	if cfg.AdminTLS {
		t.admin = cert.ServerConfig()
	}
	return t, reg.Register(tlsCollector(cert))
}

// tlsCollector exports the certificate's reload errors and expiry.
func tlsCollector(cert *tlsreload.Certificate) prometheus.Collector {
	return statsCollector[tlsreload.Stats]{read: cert.Stats, families: []family[tlsreload.Stats]{
		counter("pushfabric_tls_reload_errors_total", "Changes of the TLS certificate or key file after which the pair did not load (the last good one stays in use; logged).",
			func(s tlsreload.Stats) uint64 { return s.ReloadErrors }),
		gauge("pushfabric_tls_cert_expiry_timestamp_seconds", "When the TLS certificate in use expires (its NotAfter), Unix seconds.",
			func(s tlsreload.Stats) float64 { return float64(s.NotAfter.Unix()) }),
	}}
}
