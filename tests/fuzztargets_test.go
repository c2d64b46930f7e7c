package tests

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// fuzzFunc is a fuzz target's declaration.
var fuzzFunc = regexp.MustCompile(`(?m)^func (Fuzz\w+)\(f \*testing\.F\)`)

// Every fuzz target of the module is in the Makefile's FUZZ_TARGETS, so
// that `make test` runs it and `make fuzz` campaigns reach it, every
// entry there names one, and every target has a committed corpus.
func TestMakefileListsEveryFuzzTarget(t *testing.T) {
	var found []string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != "..":
			return filepath.SkipDir
		case d.IsDir() || !strings.HasSuffix(path, "_test.go"):
			return nil
		}
		src, err := os.ReadFile(path)
		for _, m := range fuzzFunc.FindAllSubmatch(src, -1) {
			found = append(found, filepath.ToSlash(filepath.Dir(strings.TrimPrefix(path, "../")))+":"+string(m[1]))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	listed := makefileFuzzTargets(t)
	slices.Sort(found)
	for _, pt := range found {
		if !slices.Contains(listed, pt) {
			t.Errorf("fuzz target %s is not in the Makefile's FUZZ_TARGETS", pt)
		}
	}
	for _, pt := range listed {
		if !slices.Contains(found, pt) {
			t.Errorf("FUZZ_TARGETS lists %s, which is no fuzz target", pt)
		}
	}
	// Each has a committed corpus: the inputs that once broke something
	// are run by every go test from then on, not only by a campaign.
	for _, pt := range found {
		pkg, target, _ := strings.Cut(pt, ":")
		seeds, _ := filepath.Glob(filepath.Join("..", pkg, "testdata", "fuzz", target, "seed-*"))
		if len(seeds) == 0 {
			t.Errorf("fuzz target %s has no committed corpus: no %s/testdata/fuzz/%s/seed-* file", pt, pkg, target)
		}
	}
}

// makefileFuzzTargets is FUZZ_TARGETS, each package:Target without its
// @count.
func makefileFuzzTargets(t *testing.T) []string {
	t.Helper()
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(mk), "\nFUZZ_TARGETS := ")
	if !ok {
		t.Fatal("the Makefile has no FUZZ_TARGETS")
	}
	var out []string
	for line := range strings.Lines(rest) {
		line = strings.TrimSpace(line)
		for _, f := range strings.Fields(strings.TrimSuffix(line, `\`)) {
			target, _, _ := strings.Cut(f, "@")
			out = append(out, target)
		}
		if !strings.HasSuffix(line, `\`) {
			return out
		}
	}
	return out
}
