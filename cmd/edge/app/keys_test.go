package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/pushfabric/pushfabric/token"
)

// waitUntil checks cond every 10 ms for up to 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A running node reads its key directory again: a key added is accepted
// without a restart; a broken set is logged and counted, the keys in use
// kept.
func TestKeyDirectoryReloads(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := []byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("k1", k1)
	cfg := DefaultConfig()
	cfg.JWTKeysDir, cfg.JWTAudience = dir, "push"
	a, err := authenticator(cfg)
	if err != nil || a.mode != "jwt-keys" || a.keys == nil {
		t.Fatalf("authenticator: %+v, %v", a, err)
	}
	core, logs := observer.New(zap.InfoLevel)
	reg := prometheus.NewRegistry()
	lc := fxtest.NewLifecycle(t)
	if err := watchKeys(lc, a.keys, zap.New(core), reg); err != nil {
		t.Fatal(err)
	}
	lc.RequireStart()
	defer lc.RequireStop()
	accepts := func(key []byte, kid string) bool {
		tok, err := token.MintWith(key, "s1", time.Minute, token.MintOptions{KeyID: kid, Audience: "push"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.keys.Verify(tok)
		return err == nil
	}
	if !accepts(k1, "k1") || accepts(k2, "k2") {
		t.Fatal("before the reload: want k1 only")
	}
	write("k2", k2)
	waitUntil(t, "k2 accepted", func() bool { return accepts(k2, "k2") })
	waitUntil(t, "the reload counted", func() bool { return gather(t, reg)["pushfabric_jwt_key_reloads_total{result=ok}"] == 1 })
	write("k3", []byte("too short"))
	waitUntil(t, "the failed reload counted", func() bool { return gather(t, reg)["pushfabric_jwt_key_reloads_total{result=error}"] == 1 })
	if !accepts(k1, "k1") || !accepts(k2, "k2") {
		t.Fatal("after a failed reload: want the keys in use kept")
	}
	failed := logs.FilterMessage("JWT key files changed but do not load; checking tokens with the keys in use").All()
	if len(failed) != 1 || !strings.Contains(failed[0].ContextMap()["error"].(string), `"k3"`) {
		t.Fatalf("failure logs %v; want one naming k3", failed)
	}
	if logs.FilterMessage("JWT keys reloaded").Len() != 1 {
		t.Fatal("the reload was not logged")
	}
}

// The key flags exclude a single key's.
func TestKeyDirectoryExcludesSingleKeys(t *testing.T) {
	cfg := DefaultConfig()
	cfg.JWTKeysDir, cfg.JWTSecretFile = t.TempDir(), "secret"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "exclude each other") {
		t.Fatalf("Validate: %v", err)
	}
}
