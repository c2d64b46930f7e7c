package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kong"
)

// UsageExit is the exit status of a mistake on the command line: an
// unknown flag, a missing argument, a value the command refuses.
const UsageExit = 2

// UsageError prints err, from kong's Parse, as one line on w, naming the
// command it is about (prog when it names none) and pointing to that
// command's --help, and returns UsageExit. An argument kong read as an
// unknown flag because it starts with - and a digit (-1) is told to be
// put after --.
func UsageError(w io.Writer, prog string, err error) int {
	path, msg := prog, err.Error()
	var pe *kong.ParseError
	if errors.As(err, &pe) && pe.Context != nil {
		if n := pe.Context.Selected(); n != nil {
			path = n.FullPath()
			msg = strings.TrimPrefix(msg, n.Path()+": ") // kong names the command of a Validate error
		}
		if dashed, ok := dashedArgument(pe.Context, prog, msg); ok {
			msg = dashed
		}
	}
	if arg, ok := strings.CutPrefix(msg, `expected "<`); ok {
		msg = "missing argument <" + strings.TrimSuffix(arg, `"`)
	}
	msg = strings.ReplaceAll(msg, "\n", "; ")
	fmt.Fprintf(w, "%s: %s (see %s --help)\n", path, msg, path)
	return UsageExit
}

// dashedArgument is the message for kong's "unknown flag -1…" when the
// flag starts with - and a digit: most likely an argument (a negative
// number), shown as the command line that passes it, with -- before it
// and without the flags (which may hold secrets).
func dashedArgument(ctx *kong.Context, prog, msg string) (string, bool) {
	flag, ok := strings.CutPrefix(msg, "unknown flag ")
	flag, _, _ = strings.Cut(flag, ",")
	if !ok || len(flag) < 2 || flag[0] != '-' || flag[1] < '0' || flag[1] > '9' {
		return "", false
	}
	line := []string{prog}
	skipValue := false
	for _, a := range ctx.Args {
		switch {
		case a == "--":
			return "", false
		case strings.HasPrefix(a, flag):
			line = append(line, "--", a)
			return fmt.Sprintf("%s is read as a flag: put -- before an argument that starts with - (%s)", a, strings.Join(line, " ")), true
		case skipValue:
			skipValue = false
		case strings.HasPrefix(a, "-"):
			skipValue = takesValue(ctx, a)
		default:
			line = append(line, a)
		}
	}
	return "", false
}

// takesValue reports whether the flag arg (--name or -n, without =value)
// is one of the context's flags that takes the next argument as its value.
func takesValue(ctx *kong.Context, arg string) bool {
	if strings.Contains(arg, "=") {
		return false
	}
	name, node := strings.TrimLeft(arg, "-"), ctx.Selected()
	if node == nil {
		node = ctx.Model.Node
	}
	for _, group := range node.AllFlags(false) {
		for _, f := range group {
			if f.Name == name || len(name) == 1 && f.Short == rune(name[0]) {
				return !f.IsBool() && !f.IsCounter()
			}
		}
	}
	return false
}

// NewParser is a client tool's kong command line for the command struct
// m: named name, described by description, with its ${…} variables and the
// NATS flags' (NATSVars), every flag also read from an environment
// variable under envPrefix (PUSHCTL_), help on stdout and compact.
func NewParser(m any, name, description, envPrefix string, vars kong.Vars, stdout, stderr io.Writer) (*kong.Kong, error) {
	all := kong.Vars{}
	for k, v := range NATSVars(envPrefix) {
		all[k] = v
	}
	for k, v := range vars {
		all[k] = v
	}
	return kong.New(m, kong.Name(name), kong.Description(description),
		kong.DefaultEnvars(strings.TrimSuffix(envPrefix, "_")), all,
		kong.Writers(stdout, stderr), kong.ConfigureHelp(kong.HelpOptions{Compact: true}))
}
