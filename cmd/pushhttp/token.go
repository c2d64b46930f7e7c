package main

import (
	"fmt"
	"time"

	"github.com/pushfabric/pushfabric/cmd/pushhttp/httpapi"
	"github.com/pushfabric/pushfabric/push"
	"github.com/pushfabric/pushfabric/token"
)

// tokenCmd is pushhttp token.
type tokenCmd struct {
	JWTSecretFile string        `name:"jwt-secret-file" required:"" placeholder:"FILE" help:"File holding pushhttp's HS256 secret (at least 32 bytes; surrounding white space ignored): the one pushhttp serve --jwt-secret-file checks with, never the edge's."`
	Name          string        `required:"" env:"-" help:"The producer the token names (its sub claim), in pushhttp's log and refusals."`
	TTL           time.Duration `name:"ttl" default:"1h" help:"How long the token is valid."`
	JWTAudience   string        `name:"jwt-audience" default:"${audience}" help:"The token's aud claim: pushhttp serve's --jwt-audience."`
	Target        []string      `env:"-" placeholder:"TARGET" help:"What the token may push to, repeatable: session:PATTERN, group:PATTERN or all; default: every session and every group, no broadcast."`
}

// Validate checks the name, the lifetime and the targets.
func (c *tokenCmd) Validate() error {
	if err := push.CheckName("--name", c.Name); c.Name != "" && err != nil { // kong says when it is missing
		return err
	}
	if c.TTL <= 0 {
		return fmt.Errorf("--ttl %v: want a positive duration", c.TTL)
	}
	_, err := httpapi.ParseTargets(c.Target)
	return err
}

func (c *tokenCmd) run() int {
	secret, err := token.ReadSecretFile(c.JWTSecretFile)
	if err != nil {
		return fail("token", err)
	}
	tok, err := httpapi.MintToken(secret, c.Name, c.TTL, c.JWTAudience, c.Target)
	if err != nil {
		return fail("token", err)
	}
	fmt.Println(tok)
	return 0
}
