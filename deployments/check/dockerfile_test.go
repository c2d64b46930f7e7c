package check

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // FROM, RUN, …, in capitals
	args string
}

// stage is a build stage: its FROM and the instructions after it.
type stage struct {
	from string // the image, without "AS name"
	name string
	ins  []instruction
}

// parseDockerfile reads the Dockerfile's stages: enough of the format for
// what the repository's own uses (no heredocs, no escape directive).
func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	for _, in := range instructions(string(b)) {
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			s := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before the first FROM", path, in.cmd)
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	return stages
}

// instructions splits a Dockerfile into instructions.
func instructions(src string) []instruction {
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if rest, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// last is the stage's last instruction cmd's arguments, "" if none.
func (s stage) last(cmd string) string {
	for i := len(s.ins) - 1; i >= 0; i-- {
		if s.ins[i].cmd == cmd {
			return s.ins[i].args
		}
	}
	return ""
}

// all is the arguments of every cmd instruction of the stage, joined.
func (s stage) all(cmd string) string {
	var parts []string
	for _, in := range s.ins {
		if in.cmd == cmd {
			parts = append(parts, in.args)
		}
	}
	return strings.Join(parts, "\n")
}

// The image is built with the toolchain go.mod names, static, stamped with
// the version as the Makefile stamps it, and runs the edge as a user that
// is not root, with the ports the shipped configs listen on.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("got %d stages; want a build stage and a final one", len(stages))
	}
	checkBuildStage(t, stages[0])
	checkFinalStage(t, stages[len(stages)-1], stages[0].name)
}

func checkBuildStage(t *testing.T, build stage) {
	goVersion := strings.TrimPrefix(goModVersion(t, "toolchain"), "go")
	if !strings.HasPrefix(build.from, "golang:"+goVersion+"-") && build.from != "golang:"+goVersion {
		t.Errorf("build stage FROM %s; want golang:%s (go.mod's toolchain line)", build.from, goVersion)
	}
	run := build.all("RUN")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/edge", "./cmd/pushctl",
		"-X github.com/pushfabric/pushfabric/internal/version.stamp=${VERSION}"} {
		if !strings.Contains(run, want) {
			t.Errorf("build stage's RUN has no %q:\n%s", want, run)
		}
	}
	if !strings.HasPrefix(build.all("ARG"), "VERSION") {
		t.Errorf("build stage has no ARG VERSION: got %q", build.all("ARG"))
	}
	if mk, err := os.ReadFile(filepath.Join(root, "Makefile")); err != nil || !strings.Contains(string(mk),
		"-X github.com/pushfabric/pushfabric/internal/version.stamp=$(VERSION)") {
		t.Errorf("the Makefile stamps the version differently now (%v): the Dockerfile should follow", err)
	}
}

func checkFinalStage(t *testing.T, final stage, buildName string) {
	if final.from != "gcr.io/distroless/static-debian12:nonroot" && final.from != "scratch" {
		t.Errorf("final stage FROM %s; want distroless static or scratch", final.from)
	}
	if user := final.last("USER"); user == "" || user == "root" || strings.HasPrefix(user, "0") {
		t.Errorf("final stage USER %q; want a user that is not root", user)
	}
	if got := strings.Fields(final.all("EXPOSE")); !slices.Equal(got, []string{"8080", "8081", "9090"}) {
		t.Errorf("EXPOSE %v; want 8080 8081 9090", got)
	}
	var entry []string
	if err := json.Unmarshal([]byte(final.last("ENTRYPOINT")), &entry); err != nil || len(entry) != 1 {
		t.Fatalf("ENTRYPOINT %q; want the exec form, one path (%v)", final.last("ENTRYPOINT"), err)
	}
	if dest := copyDest(t, final, buildName, "edge"); entry[0] != dest {
		t.Errorf("ENTRYPOINT %v; want the edge, copied to %s", entry, dest)
	}
	copyDest(t, final, buildName, "pushctl")
}

// copyDest is where the stage copies the binary name from the build stage.
func copyDest(t *testing.T, s stage, buildName, name string) string {
	t.Helper()
	for _, in := range s.ins {
		f := strings.Fields(in.args)
		if in.cmd != "COPY" || len(f) < 3 || f[0] != "--from="+buildName {
			continue
		}
		dest := f[len(f)-1]
		for _, src := range f[1 : len(f)-1] {
			if filepath.Base(src) == name && strings.HasSuffix(dest, "/") {
				return dest + name
			}
		}
	}
	t.Errorf("the final stage copies no %s from the %s stage", name, buildName)
	return ""
}

// exposedPorts is what the image's final stage EXPOSEs.
func exposedPorts(t *testing.T) []string {
	t.Helper()
	stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	return strings.Fields(stages[len(stages)-1].all("EXPOSE"))
}

// imageUser is the uid the image runs as (its final USER, uid[:gid]).
func imageUser(t *testing.T) string {
	t.Helper()
	stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	uid, _, _ := strings.Cut(stages[len(stages)-1].last("USER"), ":")
	return uid
}

// The Makefile builds and tests with the toolchain go.mod names.
func TestMakefileToolchain(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	got := "nothing"
	if m := regexp.MustCompile(`(?m)^export GOTOOLCHAIN := (\S+)$`).FindSubmatch(b); m != nil {
		got = string(m[1])
	}
	if want := goModVersion(t, "toolchain"); got != want {
		t.Errorf("the Makefile exports GOTOOLCHAIN %s; want %s (go.mod's toolchain line)", got, want)
	}
}
