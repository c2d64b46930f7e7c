package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/alecthomas/kong"

	"github.com/pushfabric/pushfabric/token"
)

// keyFlags are where a token is minted from.
type keyFlags struct {
	SecretFile string        `placeholder:"FILE" help:"File holding the HS256 secret the edge checks tokens with."`
	KeyFile    string        `placeholder:"FILE" help:"PEM private key (RSA: RS256, Ed25519: EdDSA) whose public half the edge checks tokens with."`
	TTL        time.Duration `name:"ttl" default:"1h" help:"How long the token is valid: the edge closes a connection made with it then (token_expired), unless it is refreshed; listen mints a fresh one to refresh it ahead of that (and, with --reconnect, to reconnect with)."`
	Group      []string      `placeholder:"NAME" help:"A group the token's connection is a member of (its groups claim; repeatable, or comma-separated; at most 32)."`
	Kid        string        `name:"kid" placeholder:"ID" help:"The key id in the token's header: which of the edge's --jwt-keys or --jwt-jwks keys checks it."`
	Aud        string        `name:"aud" placeholder:"AUD" help:"The token's aud claim, for an edge with --jwt-audience."`
	Iss        string        `name:"iss" placeholder:"ISS" help:"The token's iss claim, for an edge with --jwt-issuer."`
}

func (k *keyFlags) given() bool { return k.SecretFile != "" || k.KeyFile != "" }

// errBothKeys: a token is minted from one key.
var errBothKeys = errors.New("give --secret-file or --key-file, not both")

// errNoKey: pushctl token needs a key to mint with.
var errNoKey = errors.New("give --secret-file or --key-file")

// mint signs a token for session.
func (k *keyFlags) mint(session string) (string, error) {
	var key []byte
	var err error
	switch {
	case k.SecretFile != "" && k.KeyFile != "":
		return "", errBothKeys
	case k.SecretFile != "":
		key, err = token.ReadSecretFile(k.SecretFile)
	case k.KeyFile != "":
		key, err = os.ReadFile(k.KeyFile)
	default:
		return "", errNoKey
	}
	if err != nil {
		return "", err
	}
	return token.MintWith(key, session, k.TTL, token.MintOptions{Groups: k.Group, KeyID: k.Kid, Audience: k.Aud, Issuer: k.Iss})
}

// tokenCmd is pushctl token.
type tokenCmd struct {
	keyFlags `embed:""`
	Session  string `arg:"" help:"The session the token is for (its subject)."`
}

// Help is shown under the command's usage.
func (c *tokenCmd) Help() string {
	return "Prints a client token (a JWT whose subject is the session) for the edge to accept.\nGive --secret-file or --key-file."
}

// Validate checks the session's name and that exactly one key is given,
// so that either mistake is a command-line one.
func (c *tokenCmd) Validate(kctx *kong.Context) error {
	switch {
	case c.SecretFile != "" && c.KeyFile != "":
		return errBothKeys
	case !c.given():
		return errNoKey
	}
	return checkArg(kctx, "session", "session", c.Session)
}

func (c *tokenCmd) run() int {
	tok, err := c.mint(c.Session)
	if err != nil {
		return fail("token", err)
	}
	fmt.Println(tok)
	return 0
}
