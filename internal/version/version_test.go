package version

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
)

const rev = "0123456789abcdef0123456789abcdef01234567"

// build is build information with the given main module version and
// settings (key, value, key, value…).
func build(version string, settings ...string) *debug.BuildInfo {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/pushfabric/pushfabric", Version: version}}
	for i := 0; i+1 < len(settings); i += 2 {
		bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
	}
	return bi
}

// The version is the stamp, else the module version, else the revision
// with its dirty flag, else devel; revision and flag are kept whichever
// names the build.
func TestFromBuild(t *testing.T) {
	for _, c := range []struct {
		name  string
		stamp string
		bi    *debug.BuildInfo
		want  Info
	}{
		{"go install @version", "", build("v1.2.0"),
			Info{Version: "v1.2.0", GoVersion: "go1.26.8"}},
		{"make build", "v1.2.0-3-gabc1234-dirty", build("(devel)", "vcs.revision", rev, "vcs.modified", "true"),
			Info{Version: "v1.2.0-3-gabc1234-dirty", Revision: rev, Modified: true, GoVersion: "go1.26.8"}},
		{"go build with VCS", "", build("v0.0.0-20261201120000-0123456789ab+dirty", "vcs.revision", rev, "vcs.modified", "true"),
			Info{Version: "v0.0.0-20261201120000-0123456789ab+dirty", Revision: rev, Modified: true, GoVersion: "go1.26.8"}},
		{"VCS without a module version", "", build("(devel)", "vcs.revision", rev, "vcs.modified", "false"),
			Info{Version: "0123456789ab", Revision: rev, GoVersion: "go1.26.8"}},
		{"VCS, modified", "", build("(devel)", "vcs.revision", rev, "vcs.modified", "true"),
			Info{Version: "0123456789ab-dirty", Revision: rev, Modified: true, GoVersion: "go1.26.8"}},
		{"nothing known", "", build("(devel)"),
			Info{Version: Devel, GoVersion: "go1.26.8"}},
		{"no build information", "", nil,
			Info{Version: Devel, GoVersion: runtime.Version()}},
		{"no build information, stamped", "v1.2.0", nil,
			Info{Version: "v1.2.0", GoVersion: runtime.Version()}},
	} {
		if got := fromBuild(c.stamp, c.bi); got != c.want {
			t.Errorf("%s: got %+v; want %+v", c.name, got, c.want)
		}
	}
}

func TestString(t *testing.T) {
	for _, c := range []struct {
		in   Info
		want string
	}{
		{Info{Version: "v1.2.0", GoVersion: "go1.26.8"}, "v1.2.0 (go1.26.8)"},
		{Info{Version: "0123456789ab", Revision: rev, GoVersion: "go1.26.8"}, "0123456789ab (revision 0123456789ab, go1.26.8)"},
		{Info{Version: "v1.2.0-dirty", Revision: rev, Modified: true, GoVersion: "go1.26.8"}, "v1.2.0-dirty (revision 0123456789ab, modified, go1.26.8)"},
	} {
		if got := c.in.String(); got != c.want {
			t.Errorf("%+v: got %q; want %q", c.in, got, c.want)
		}
	}
}

// The running test binary has a version and the toolchain that built it.
func TestCurrent(t *testing.T) {
	got := Current()
	if got.Version == "" || got.GoVersion != runtime.Version() {
		t.Errorf("got %+v; want a version and GoVersion %s", got, runtime.Version())
	}
}

// A program built with the -X flag the Makefile passes says what it was
// stamped with, so a renamed variable cannot silently unstamp the builds.
func TestLinkerStamp(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "show")
	build := exec.Command("go", "build", "-o", bin,
		"-ldflags", "-X github.com/pushfabric/pushfabric/internal/version.stamp=v9.8.7-stamped", "./testdata/show")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	var got Info
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.Version != "v9.8.7-stamped" || got.GoVersion != runtime.Version() {
		t.Errorf("got %+v; want version v9.8.7-stamped built by %s", got, runtime.Version())
	}
}
