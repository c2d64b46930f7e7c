// Package cli holds what pushfabric's commands share: the edge's flags
// that can also come from PUSHFABRIC_* environment variables, help that
// lists both, the NATS connection flags of the client tools (NATSFlags,
// for kong, with nats CLI contexts), the logger, reading a node's /metrics, tracing set up from the OTEL_*
// environment, and secrets kept out of logs. Only the commands import it (Go's
// internal rule); it may import any library of the module, never a
// command.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// EnvPrefix starts every environment variable a flag can come from.
const EnvPrefix = "PUSHFABRIC_"

// EnvName is the environment variable for a flag: PUSHFABRIC_ and the flag
// name in capitals with - as _.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args into fs, then sets every flag not given on the command
// line from its environment variable, if set. A bad value, from either,
// is an error naming where it came from.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// Usage returns a usage function for fs that prints the synopsis, then
// every flag with its default and environment variable.
func Usage(fs *flag.FlagSet, synopsis string) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintln(w, synopsis)
		fmt.Fprintf(w, "\nFlags (each can also be set by the environment variable shown):\n")
		PrintFlags(w, fs)
	}
}

// PrintFlags lists fs's flags: name, value type, default, environment
// variable, description.
func PrintFlags(w io.Writer, fs *flag.FlagSet) {
	var flags []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
	sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
	for _, f := range flags {
		typ, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		fmt.Fprintln(w, line)
		fmt.Fprintf(w, "      %s\n", strings.ReplaceAll(usage, "\n", "\n      "))
		def := f.DefValue
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "      default %s; env %s\n", def, EnvName(f.Name))
	}
}

// Logger builds the process's logger: level is debug, info, warn or error;
// format is json, console, or auto (console when stderr is a terminal).
func Logger(level, format string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	if format == "auto" {
		format = "json"
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			format = "console"
		}
	}
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig()
	case "console":
		cfg = zap.NewDevelopmentConfig()
		cfg.Development = false
	default:
		return nil, fmt.Errorf("log format %q: want json, console or auto", format)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.DisableStacktrace = true // messages are static and carry their fields
	// A flood of one message (a rejected client per connect, say) is sampled:
	// the first 100 a second, then one in 100.
	cfg.Sampling = &zap.SamplingConfig{Initial: 100, Thereafter: 100}
	return cfg.Build()
}

// FlagExit is the exit status for an error from Parse: 0 after --help
// (the usage is printed), 2 otherwise, with the error printed.
func FlagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(os.Stderr, err)
	return 2
}
