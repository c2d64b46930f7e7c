package app

import (
	"errors"
	"fmt"

	"go.uber.org/zap"
)

// An openListener is one that serves without authentication off loopback,
// because the operator allowed it.
type openListener struct {
	warning string // a static log message
	addr    string
}

const (
	openNATSWarning = "OPEN NATS: the embedded NATS server listens off loopback with no authentication " +
		"(--allow-open-nats): anyone who reaches it reads every push and can forge takeovers"
	openPprofWarning = "OPEN PPROF: Go profiles and the command line are served off loopback to anyone " +
		"who reaches the admin listener (--allow-open-pprof)"
)

// exposure applies the node's rule for listeners that would serve without
// authentication: on loopback they are fine; anywhere else they are
// refused, with an error naming the flags that fix it, unless the
// operator allowed them explicitly. The client listeners follow the same
// rule in authenticator. It returns the allowed open listeners, to be
// warned about. The admin listener itself (metrics, health, readiness) may
// listen anywhere: probes and Prometheus need it.
func exposure(cfg Config) ([]openListener, error) {
	var open []openListener
	var errs []error
	if nats := cfg.Bus.Embedded.Listen; len(cfg.Bus.URLs) == 0 && cfg.Bus.User == "" && offLoopback(nats) {
		if cfg.AllowOpenNATS {
			open = append(open, openListener{openNATSWarning, nats})
		} else {
			errs = append(errs, fmt.Errorf("the embedded NATS server would listen on %s, off loopback, with no authentication: "+
				"anyone who reaches it reads every push and can forge takeovers; give --nats-user and --nats-password-file, "+
				"or --allow-open-nats to serve it open", nats))
		}
	}
	if admin := cfg.AdminListen; cfg.Pprof && offLoopback(admin) {
		if cfg.AllowOpenPprof {
			open = append(open, openListener{openPprofWarning, admin})
		} else {
			errs = append(errs, fmt.Errorf("--pprof would serve Go profiles and the command line on %s, off loopback, to anyone: "+
				"serve the admin listener on loopback, or give --allow-open-pprof", admin))
		}
	}
	return open, errors.Join(errs...)
}

// warnOpen says loudly which listeners serve open.
func warnOpen(log *zap.Logger, open []openListener) {
	for _, l := range open {
		log.Warn(l.warning, zap.String("addr", l.addr))
	}
}
