package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushfabric/pushfabric/cmd/edge/app"
	"github.com/pushfabric/pushfabric/token"
)

// The banner's browser page URL carries a token the node accepts, for
// session browser, minted from the node's JWT secret file (read as the
// node reads it, surrounding white space ignored); in development mode
// it names the session.
func TestBrowserQuery(t *testing.T) {
	secret := []byte("an HS256 secret of at least 32 bytes, for tests")
	o := &options{cfg: app.DefaultConfig()}
	o.cfg.JWTSecretFile = filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(o.cfg.JWTSecretFile, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	q, err := browserQuery(o, "pushctl")
	if err != nil {
		t.Fatal(err)
	}
	tok, ok := strings.CutPrefix(q, "token=")
	if !ok {
		t.Fatalf("query %q: want token=…", q)
	}
	v, err := token.NewHS256(secret)
	if err != nil {
		t.Fatal(err)
	}
	if session, err := v.Verify(tok); err != nil || session != "browser" {
		t.Fatalf("token: session %q, %v; want browser", session, err)
	}
	if q, _ := browserQuery(&options{cfg: app.DefaultConfig()}, "pushctl"); q != "session=browser" {
		t.Fatalf("development mode: query %q, want session=browser", q)
	}
}
