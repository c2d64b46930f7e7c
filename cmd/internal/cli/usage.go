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
// command's --help, and returns UsageExit.
func UsageError(w io.Writer, prog string, err error) int {
	path, msg := prog, err.Error()
	var pe *kong.ParseError
	if errors.As(err, &pe) && pe.Context != nil {
		if n := pe.Context.Selected(); n != nil {
			path = n.FullPath()
			msg = strings.TrimPrefix(msg, n.Path()+": ") // kong names the command of a Validate error
		}
	}
	if arg, ok := strings.CutPrefix(msg, `expected "<`); ok {
		msg = "missing argument <" + strings.TrimSuffix(arg, `"`)
	}
	msg = strings.ReplaceAll(msg, "\n", "; ")
	fmt.Fprintf(w, "%s: %s (see %s --help)\n", path, msg, path)
	return UsageExit
}
