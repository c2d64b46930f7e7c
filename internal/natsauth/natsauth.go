// Package natsauth turns the ways a process proves itself to NATS — a
// .creds file, an NKey seed, a token, a user and password, TLS — into
// nats.go options, so that the edge node and the tools connect the same
// way from the same settings. It imports nats.go and the standard library.
package natsauth

import (
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
)

// Credentials are how a client proves itself to NATS. Empty fields are
// not used.
type Credentials struct {
	CredsFile    string // a .creds file (JWT and seed)
	NKeySeedFile string // an NKey seed file
	Token        string
	User         string
	Password     string
	TLSCA        string // a CA bundle to trust
	TLSCert      string // a client certificate, with TLSKey
	TLSKey       string
}

// Options are the nats.go options of c. It reads the NKey seed file, so
// its error names that file.
func (c Credentials) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.NKeySeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nkey seed %s: %w", c.NKeySeedFile, err)
		}
		opts = append(opts, o)
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" || c.TLSKey != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	return opts, nil
}

// ReadPasswordFile reads a NATS password from path, surrounding white
// space ignored.
func ReadPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("nats password: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
