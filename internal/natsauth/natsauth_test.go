package natsauth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOptions(t *testing.T) {
	if opts, err := (Credentials{}).Options(); err != nil || len(opts) != 0 {
		t.Fatalf("no credentials: %d options, %v; want none", len(opts), err)
	}
	opts, err := Credentials{Token: "t", User: "u", Password: "p", TLSCA: "ca.pem", TLSCert: "c.pem", TLSKey: "k.pem"}.Options()
	if err != nil || len(opts) != 4 {
		t.Fatalf("token, user, CA and client cert: %d options, %v; want 4", len(opts), err)
	}
	if _, err := (Credentials{NKeySeedFile: "missing.nk"}).Options(); err == nil || !strings.Contains(err.Error(), "missing.nk") {
		t.Fatalf("missing seed file: %v; want an error naming it", err)
	}
}

func TestReadPasswordFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(path, []byte("  s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pw, err := ReadPasswordFile(path); err != nil || pw != "s3cret" {
		t.Fatalf("got %q, %v; want s3cret", pw, err)
	}
	if _, err := ReadPasswordFile(path + "x"); err == nil || !strings.Contains(err.Error(), "nats password") {
		t.Fatalf("missing file: %v", err)
	}
}
