package app

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/token"
)

// keyReloadInterval is how often the key directory and JWKS file are read
// again: a rotated key is in use within it.
const keyReloadInterval = 2 * time.Second

// keyReloads counts the reloads of the key files that found them changed.
type keyReloads struct {
	ok, failed atomic.Uint64
}

func (k *keyReloads) stats() map[string]uint64 {
	return map[string]uint64{"ok": k.ok.Load(), "error": k.failed.Load()}
}

// watchKeys reads v's key files again every keyReloadInterval while the
// node runs. A changed set that loads is logged and used from then on; one
// that does not is logged and counted, once per change, and the keys in
// use stay.
func watchKeys(lc fx.Lifecycle, v *token.Verifier, log *zap.Logger, reg prometheus.Registerer) error {
	counts := &keyReloads{}
	if err := reg.Register(keysCollector(counts)); err != nil {
		return err
	}
	log = log.Named("jwt")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			wg.Go(func() { reloadKeys(ctx, v, counts, log) })
			return nil
		},
		OnStop: func(context.Context) error {
			cancel()
			wg.Wait()
			return nil
		},
	})
	return nil
}

func reloadKeys(ctx context.Context, v *token.Verifier, counts *keyReloads, log *zap.Logger) {
	t := time.NewTicker(keyReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		switch changed, err := v.Reload(); {
		case err != nil:
			counts.failed.Add(1)
			log.Error("JWT key files changed but do not load; checking tokens with the keys in use", zap.Error(err))
		case changed:
			counts.ok.Add(1)
			log.Info("JWT keys reloaded")
		}
	}
}

func keysCollector(k *keyReloads) prometheus.Collector {
	return statsCollector[*keyReloads]{read: func() *keyReloads { return k }, families: []family[*keyReloads]{
		counterBy("pushfabric_jwt_key_reloads_total", "Changes of --jwt-keys or --jwt-jwks read, by result: ok (the new keys are in use), error (they did not load: the keys in use stay; logged).",
			"result", func(k *keyReloads) map[string]uint64 { return k.stats() }),
	}}
}
