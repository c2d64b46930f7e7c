package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pushfabric/pushfabric/cmd/internal/cli"
	"github.com/pushfabric/pushfabric/token"
)

// keyFlags are where a token is minted from.
type keyFlags struct {
	secretFile, keyFile string
	ttl                 time.Duration
}

func (k *keyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.secretFile, "secret-file", "", "file holding the HS256 secret the edge checks tokens with")
	fs.StringVar(&k.keyFile, "key-file", "", "PEM private key (RSA: RS256, Ed25519: EdDSA) whose public half the edge checks tokens with")
	fs.DurationVar(&k.ttl, "ttl", time.Hour, "how long the token is valid")
}

func (k *keyFlags) given() bool { return k.secretFile != "" || k.keyFile != "" }

// mint signs a token for session.
func (k *keyFlags) mint(session string) (string, error) {
	var key []byte
	var err error
	switch {
	case k.secretFile != "" && k.keyFile != "":
		return "", errors.New("give --secret-file or --key-file, not both")
	case k.secretFile != "":
		key, err = os.ReadFile(k.secretFile)
		key = []byte(strings.TrimSpace(string(key)))
	case k.keyFile != "":
		key, err = os.ReadFile(k.keyFile)
	default:
		return "", errors.New("give --secret-file or --key-file")
	}
	if err != nil {
		return "", err
	}
	return token.Mint(key, session, k.ttl)
}

func runToken(args []string) int {
	var kf keyFlags
	fs := flag.NewFlagSet("pushctl token", flag.ContinueOnError)
	fs.Usage = cli.Usage(fs, "Usage: pushctl token (--secret-file F | --key-file F) [--ttl D] <session>\n\nPrints a client token (a JWT whose subject is the session) for the edge to accept.")
	kf.register(fs)
	if err := cli.Parse(fs, args); err != nil {
		return cli.FlagExit(err)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	tok, err := kf.mint(fs.Arg(0))
	if err != nil {
		return fail("token", err)
	}
	fmt.Println(tok)
	return 0
}
