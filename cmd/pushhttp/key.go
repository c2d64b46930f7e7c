package main

import (
	"fmt"
	"os"

	"github.com/pushfabric/pushfabric/cmd/pushhttp/httpapi"
	"github.com/pushfabric/pushfabric/push"
)

// keyCmd is pushhttp key.
type keyCmd struct {
	New keyNewCmd `cmd:"" help:"Make an API key: print it once on standard output and append its name and SHA-256 to --keys-file."`
	Rm  keyRmCmd  `cmd:"" help:"Remove an API key from --keys-file; a running pushhttp refuses it from its next request on."`
}

// keyNewCmd is pushhttp key new.
type keyNewCmd struct {
	KeysFile string   `name:"keys-file" required:"" placeholder:"FILE" help:"The keys file to add the key to (made, mode 0600, if it is not there); a running pushhttp serve takes the key from its next request on."`
	Name     string   `required:"" env:"-" help:"The key's name: who holds it, in pushhttp's log and refusals (1-128 of A-Z a-z 0-9 _ -, unique in the file)."`
	Target   []string `env:"-" placeholder:"TARGET" help:"What the key may push to, repeatable: session:PATTERN, group:PATTERN (path.Match: * ? [a-z]) or all (broadcast); default: every session and every group, no broadcast."`
}

// Validate checks the name (when given: kong says it is missing) and the
// targets.
func (c *keyNewCmd) Validate() error {
	if err := push.CheckName("--name", c.Name); c.Name != "" && err != nil {
		return err
	}
	_, err := httpapi.ParseTargets(c.Target)
	return err
}

func (c *keyNewCmd) run() int {
	targets, _ := httpapi.ParseTargets(c.Target)
	key := httpapi.NewKey()
	if err := httpapi.AppendKey(c.KeysFile, httpapi.KeyEntry{Name: c.Name, Hash: httpapi.HashKey(key), Targets: targets}); err != nil {
		return fail("key new", err)
	}
	fmt.Println(key)
	fmt.Fprintf(os.Stderr, "pushhttp key new: key %s added to %s; it is shown only this once: send it as Authorization: Bearer <key>\n", c.Name, c.KeysFile)
	return 0
}

// keyRmCmd is pushhttp key rm.
type keyRmCmd struct {
	KeysFile string `name:"keys-file" required:"" placeholder:"FILE" help:"The keys file to remove the key from."`
	Name     string `required:"" env:"-" help:"The name of the key to remove."`
}

func (c *keyRmCmd) run() int {
	if err := httpapi.RemoveKey(c.KeysFile, c.Name); err != nil {
		return fail("key rm", err)
	}
	fmt.Fprintf(os.Stderr, "pushhttp key rm: key %s removed from %s\n", c.Name, c.KeysFile)
	return 0
}
