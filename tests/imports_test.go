package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is the import path every package of the repository starts with.
const module = "github.com/pushfabric/pushfabric"

// listedPackage is what `go list -json` says of one package that we read.
type listedPackage struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Error      *struct{ Err string }
}

// importGraph is every package the module's packages are built from (not
// their tests), by import path.
type importGraph map[string]*listedPackage

// houseRule is one rule of the package map in README.md: the packages it
// binds may not reach (import directly or through others) a forbidden one.
type houseRule struct {
	name      string                // the rule, as a failure reads
	binds     func(rel string) bool // module packages it holds for, by path within the module
	forbidden func(p *listedPackage) bool
}

// houseRules are the import directions the layout promises: the vocabulary
// at the bottom, edge without NATS, the libraries other services import
// without the edge, fx or Prometheus, clients that do not link the server,
// and commands and tests that no library imports.
func houseRules() []houseRule {
	return []houseRule{{
		name:      "edge and its subpackages know nothing of NATS",
		binds:     under("edge"),
		forbidden: external("github.com/nats-io/"),
	}, {
		name:      "edge imports neither bus nor dlq",
		binds:     under("edge"),
		forbidden: inModule(under("bus", "dlq")),
	}, {
		name:      "the vocabulary (push) imports only the standard library",
		binds:     under("push"),
		forbidden: func(p *listedPackage) bool { return !p.Standard },
	}, {
		name:      "producer, backend, dlq and registry import neither edge/... nor bus",
		binds:     under("producer", "backend", "dlq", "registry"),
		forbidden: inModule(under("edge", "bus")),
	}, {
		name:      "registry, protocol and token import no package of the module but push and internal/...",
		binds:     under("registry", "protocol", "token"),
		forbidden: inModule(not(under("push", "internal"))),
	}, {
		name:      "libraries are usable without fx and Prometheus (only the composition root and …fx packages wire them)",
		binds:     library,
		forbidden: external("go.uber.org/fx", "go.uber.org/dig", "github.com/prometheus/"),
	}, {
		name:      "the Go client and the frame format (edge/client, edge/wire) link neither the edge server nor the registry",
		binds:     under("edge/client", "edge/wire"),
		forbidden: inModule(anyOf(is("edge"), under("registry"))),
	}, {
		name:      "pushctl, pushbench and pushhttp link neither the edge server nor the bus",
		binds:     under("cmd/pushctl", "cmd/pushbench", "cmd/pushhttp"),
		forbidden: inModule(anyOf(is("edge"), under("bus", "cmd/edge"))),
	}, {
		name:      "only cmd/... and tests/... import cmd/...",
		binds:     not(under("cmd", "tests")),
		forbidden: inModule(under("cmd")),
	}, {
		name:      "only tests/... import tests/...",
		binds:     not(under("tests")),
		forbidden: inModule(under("tests")),
	}}
}

// The house rules hold for every package of the module, and every broken
// one is reported with the import chain that breaks it.
func TestImportRules(t *testing.T) {
	g := loadImportGraph(t)
	for _, r := range houseRules() {
		bound := g.bound(r)
		if len(bound) == 0 {
			t.Errorf("house rule %q binds no package: has the layout changed?", r.name)
		}
		var broken []string
		for _, from := range bound {
			for _, chain := range g.violations(from, r.forbidden) {
				broken = append(broken, "\t"+showChain(chain))
			}
		}
		if len(broken) > 0 {
			t.Errorf("house rule %q is broken by these import chains:\n%s", r.name, strings.Join(broken, "\n"))
		}
	}
}

// A violation is found however deep it lies, named by its shortest chain,
// and reported once for each forbidden package the bound one reaches.
func TestImportRulesNameTheChain(t *testing.T) {
	g := importGraph{}
	for path, imports := range map[string][]string{
		module + "/producer":         {"fmt", module + "/dlq", module + "/edge/wire"},
		module + "/dlq":              {"fmt", module + "/push", "go.uber.org/fx"},
		module + "/push":             {"fmt"},
		module + "/edge/wire":        {module + "/push", module + "/bus"},
		module + "/bus":              {"github.com/nats-io/nats.go"},
		module + "/examples/x":       {module + "/cmd/edge/app"},
		module + "/cmd/edge/app":     {"fmt"},
		module + "/cmd/pushctl":      {module + "/edge/wire", module + "/edge"},
		module + "/edge":             {"fmt"},
		"github.com/nats-io/nats.go": {"fmt"},
		"go.uber.org/fx":             {"go.uber.org/dig"},
		"go.uber.org/dig":            {"fmt"},
		"fmt":                        nil,
	} {
		g[path] = &listedPackage{ImportPath: path, Standard: !strings.Contains(path, "."), Imports: imports}
	}
	var got []string
	for _, r := range houseRules() {
		for _, from := range g.bound(r) {
			for _, chain := range g.violations(from, r.forbidden) {
				got = append(got, showChain(chain))
			}
		}
	}
	want := []string{
		"edge/wire → bus → github.com/nats-io/nats.go", "edge/wire → bus", "producer → edge/wire",
		"dlq → go.uber.org/fx", "producer → dlq → go.uber.org/fx", "examples/x → cmd/edge/app",
		"cmd/pushctl → edge", "cmd/pushctl → edge/wire → bus",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got violations %q; want %q", got, want)
	}
}

// loadImportGraph lists the module's packages and all they are built from,
// offline: the modules are in the cache once the module builds.
func loadImportGraph(t *testing.T) importGraph {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=ImportPath,Standard,Imports,Error", "./...")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOPROXY=off", "GOFLAGS=-mod=readonly")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	g, err := decodeImportGraph(out)
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return g
}

// decodeImportGraph reads the stream of JSON objects go list writes; a
// package it could not load is an error, not a hole in the graph.
func decodeImportGraph(out []byte) (importGraph, error) {
	g := importGraph{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return g, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		if p.Error != nil {
			return nil, fmt.Errorf("package %s: %s", p.ImportPath, p.Error.Err)
		}
		g[p.ImportPath] = &p
	}
}

// bound returns the module's packages that r binds, sorted.
func (g importGraph) bound(r houseRule) []string {
	var out []string
	for path := range g {
		if rel, ok := strings.CutPrefix(path, module+"/"); ok && r.binds(rel) {
			out = append(out, path)
		}
	}
	slices.Sort(out)
	return out
}

// violations returns, for each forbidden package that from reaches, the
// shortest import chain from from to it. The search does not go on through
// a forbidden package: what it imports is its own business.
func (g importGraph) violations(from string, forbidden func(*listedPackage) bool) [][]string {
	parent := map[string]string{from: ""}
	var found [][]string
	for queue := []string{from}; len(queue) > 0; queue = queue[1:] {
		p := g[queue[0]]
		if p == nil {
			continue
		}
		for _, imp := range slices.Sorted(slices.Values(p.Imports)) {
			if _, seen := parent[imp]; seen {
				continue
			}
			parent[imp] = p.ImportPath
			if q := g[imp]; q != nil && forbidden(q) {
				found = append(found, chainTo(parent, imp))
				continue
			}
			queue = append(queue, imp)
		}
	}
	return found
}

// chainTo follows parent links back from the end of a chain to its start.
func chainTo(parent map[string]string, end string) []string {
	var chain []string
	for p := end; p != ""; p = parent[p] {
		chain = append(chain, p)
	}
	slices.Reverse(chain)
	return chain
}

// showChain writes a chain with the module's packages named relative to it.
func showChain(chain []string) string {
	short := make([]string, len(chain))
	for i, p := range chain {
		short[i] = strings.TrimPrefix(p, module+"/")
	}
	return strings.Join(short, " → ")
}

// under matches the module-relative paths of the given packages and their
// subpackages.
func under(dirs ...string) func(rel string) bool {
	return func(rel string) bool {
		for _, d := range dirs {
			if rel == d || strings.HasPrefix(rel, d+"/") {
				return true
			}
		}
		return false
	}
}

// is matches exactly the given module-relative paths.
func is(rels ...string) func(rel string) bool {
	return func(rel string) bool { return slices.Contains(rels, rel) }
}

// anyOf matches what any of the matches does.
func anyOf(matches ...func(rel string) bool) func(rel string) bool {
	return func(rel string) bool {
		return slices.ContainsFunc(matches, func(m func(string) bool) bool { return m(rel) })
	}
}

// not inverts a match.
func not(match func(rel string) bool) func(rel string) bool {
	return func(rel string) bool { return !match(rel) }
}

// library matches every package other services or the composition root
// build on: all but commands, tests, examples and …fx wiring packages.
func library(rel string) bool {
	last := rel[strings.LastIndex(rel, "/")+1:]
	return !under("cmd", "tests", "examples")(rel) && !strings.HasSuffix(last, "fx")
}

// inModule matches the module's packages whose relative path matches.
func inModule(match func(rel string) bool) func(*listedPackage) bool {
	return func(p *listedPackage) bool {
		rel, ok := strings.CutPrefix(p.ImportPath, module+"/")
		return ok && match(rel)
	}
}

// external matches packages outside the module whose import path starts
// with one of the prefixes (a module path or a folder of one).
func external(prefixes ...string) func(*listedPackage) bool {
	return func(p *listedPackage) bool {
		for _, pre := range prefixes {
			if p.ImportPath == pre || strings.HasPrefix(p.ImportPath, strings.TrimSuffix(pre, "/")+"/") {
				return true
			}
		}
		return false
	}
}
