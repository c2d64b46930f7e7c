package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
	"go.yaml.in/yaml/v3"
)

// The edge's config file (--config) holds flags: each key a flag's name
// without the dashes, each value what the flag would take, so that one
// file mounted by compose or Kubernetes is the command line written down.
//
//	nats-url: nats://n1:4222,nats://n2:4222   # or a list
//	queue-len: 1024
//	drain-timeout: 10s
//	ws-allowed-origins: [https://app.example.com]
//
// It is YAML (and so JSON too). A flag on the command line wins over its
// environment variable, which wins over the file. A key that is no flag's
// name, a value that is not a scalar or a list of them, and a file that
// does not parse are refused before anything starts.

// inFile says whether a config file may set the flag name: not those
// about the command line itself.
func inFile(name string) bool {
	switch name {
	case "help", "version", "config":
		return false
	}
	return true
}

// fileResolver is a loaded config file, for kong.
type fileResolver struct {
	values map[string]string // flag name → value, as on the command line
}

// loadConfigFile reads a config file: kong's ConfigurationLoader.
func loadConfigFile(r io.Reader) (kong.Resolver, error) {
	var raw map[string]any
	if err := yaml.NewDecoder(r).Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config file: %w", err)
	}
	values := make(map[string]string, len(raw))
	for k, v := range raw {
		s, err := flagValue(v)
		if err != nil {
			return nil, fmt.Errorf("config file: %s: %w", k, err)
		}
		values[k] = s
	}
	return &fileResolver{values: values}, nil
}

// flagValue is v as the command line would give it: a list is joined
// with commas, the separator of the edge's list flags.
func flagValue(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			switch e.(type) {
			case []any, map[string]any:
				return "", fmt.Errorf("want a list of plain values, got %v", v)
			}
			if parts[i] = fmt.Sprint(e); strings.Contains(parts[i], ",") {
				return "", fmt.Errorf("want a list of plain values, got %v", v)
			}
		}
		return strings.Join(parts, ","), nil
	case map[string]any:
		return "", errors.New("want a value or a list of values, not a mapping")
	}
	return fmt.Sprint(v), nil
}

// Validate refuses a key that is not a flag the file may set.
func (r *fileResolver) Validate(app *kong.Application) error {
	known := map[string]bool{}
	for _, f := range app.Flags {
		known[f.Name] = inFile(f.Name)
	}
	var errs []error
	for k := range r.values {
		switch ok, exists := known[k]; {
		case !exists:
			errs = append(errs, fmt.Errorf("config file: %q is not a flag of edge (see edge --help)", k))
		case !ok:
			errs = append(errs, fmt.Errorf("config file: --%s cannot be set in a config file", k))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// Resolve gives kong the file's value for flag, if it has one and the
// flag's environment variable is not set (kong resolves only flags not on
// the command line, and would let a file win over the environment).
func (r *fileResolver) Resolve(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
	v, ok := r.values[flag.Name]
	if !ok {
		return nil, nil
	}
	for _, env := range flag.Tag.Envs {
		if _, set := os.LookupEnv(env); set {
			return nil, nil
		}
	}
	return v, nil
}
