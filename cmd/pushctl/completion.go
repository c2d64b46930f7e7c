package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"
)

// completeCommand is the hidden command the completion scripts call:
// pushctl __complete <words so far> prints the commands and flags that may
// come next, one a line.
const completeCommand = "__complete"

// completionCmd is pushctl completion.
type completionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"bash, zsh or fish."`
}

// Help is shown under the command's usage.
func (completionCmd) Help() string {
	return "Prints a script that completes pushctl's commands and flags. Load it with\n" +
		"  source <(pushctl completion bash)     # bash, in ~/.bashrc\n" +
		"  source <(pushctl completion zsh)      # zsh, in ~/.zshrc\n" +
		"  pushctl completion fish | source      # fish, in ~/.config/fish/config.fish"
}

var completionScripts = map[string]string{
	"bash": `_pushctl() {
	local IFS=$'\n'
	COMPREPLY=($(compgen -W "$(pushctl __complete "${COMP_WORDS[@]:1:COMP_CWORD-1}")" -- "${COMP_WORDS[COMP_CWORD]}"))
}
complete -o default -F _pushctl pushctl
`,
	"zsh": `#compdef pushctl
_pushctl() {
	local -a words_next
	words_next=("${(@f)$(pushctl __complete "${(@)words[2,CURRENT-1]}")}")
	compadd -a words_next
}
compdef _pushctl pushctl
`,
	"fish": `complete -c pushctl -f -a '(pushctl __complete (commandline -opc)[2..-1])'
`,
}

func (c *completionCmd) run() int {
	fmt.Print(completionScripts[c.Shell])
	return 0
}

// complete prints what may follow words: the commands under the one words
// name, and the flags of it and its parents.
func complete(root *kong.Node, words []string, w io.Writer) int {
	node := root
	for _, word := range words {
		for _, child := range node.Children {
			if child.Name == word && !child.Hidden {
				node = child
				break
			}
		}
	}
	for _, child := range node.Children {
		if !child.Hidden {
			fmt.Fprintln(w, child.Name)
		}
	}
	for n := node; n != nil; n = n.Parent {
		for _, f := range n.Flags {
			if !f.Hidden && !strings.HasPrefix(f.Name, "-") {
				fmt.Fprintln(w, "--"+f.Name)
			}
		}
	}
	return 0
}
