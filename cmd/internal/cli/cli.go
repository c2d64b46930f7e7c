// Package cli holds what pushfabric's commands share: the one-line usage
// error of their kong command lines, the hints that say what to do next
// about the errors a new user meets first (Explain), the NATS connection flags of the
// client tools (NATSFlags, with nats CLI contexts), the logger, reading a node's /metrics, tracing set up from the OTEL_*
// environment, and secrets kept out of logs. Only the commands import it (Go's
// internal rule); it may import any library of the module, never a
// command.
package cli

import (
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

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
