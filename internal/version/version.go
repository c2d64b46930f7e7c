// Package version says which build of pushfabric is running, for the
// edge's pushfabric_build_info metric, its startup log line and the
// commands' --version. It owns the one variable the Makefile's builds
// stamp with -ldflags -X, and reads the rest from the build information
// the Go toolchain records. It imports only the standard library; any
// package of the module may import it.
package version

import (
	"runtime"
	"runtime/debug"
)

// stamp is what the Makefile's builds say they are (git describe --tags
// --always --dirty):
//
//	go build -ldflags "-X github.com/pushfabric/pushfabric/internal/version.stamp=v1.2.0-3-gabc1234"
//
// It is the package's one variable, because the linker can set nothing
// else; empty in a build that does not stamp it.
var stamp string

// Devel is the version of a build that knows nothing about itself: no
// stamp, no module version, no VCS information.
const Devel = "devel"

// revisionLen is how much of a VCS revision a version shows, as Go's
// pseudo-versions do.
const revisionLen = 12

// Info is a build of pushfabric.
type Info struct {
	// Version names the build: the Makefile's stamp; else the module
	// version (go install …@v1.2.0, or a Go toolchain's own VCS
	// pseudo-version); else the VCS revision, short, with "-dirty" when the
	// tree was modified; else [Devel]. Never empty.
	Version string
	// Revision is the VCS commit the build was made from, in full; empty
	// when the toolchain recorded none (go install …@version, or
	// -buildvcs=false).
	Revision string
	// Modified says the working tree had changes not committed.
	Modified bool
	// GoVersion is the toolchain that built it (go1.26.8).
	GoVersion string
}

// Current is the running build. It does not fail: what the build does not
// record is left empty, and Version falls back as [Info.Version] says.
func Current() Info {
	bi, _ := debug.ReadBuildInfo() // nil when there is none
	return fromBuild(stamp, bi)
}

// String is the version with what else is known, on one line:
// "v1.2.0 (revision 0123456789ab, modified, go1.26.8)".
func (i Info) String() string {
	s := i.Version + " ("
	if i.Revision != "" {
		s += "revision " + short(i.Revision) + ", "
		if i.Modified {
			s += "modified, "
		}
	}
	return s + i.GoVersion + ")"
}

// fromBuild makes the Info of a build stamped with stamp whose build
// information is bi (nil when there is none).
func fromBuild(stamp string, bi *debug.BuildInfo) Info {
	i := Info{GoVersion: runtime.Version()}
	if bi == nil {
		i.Version = or(stamp, Devel)
		return i
	}
	if bi.GoVersion != "" {
		i.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			i.Revision = s.Value
		case "vcs.modified":
			i.Modified = s.Value == "true"
		}
	}
	i.Version = or(stamp, moduleVersion(bi), i.revisionVersion(), Devel)
	return i
}

// moduleVersion is the main module's version, or "" for a build from a
// working tree the toolchain gave no version ("(devel)").
func moduleVersion(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "(devel)" {
		return v
	}
	return ""
}

// revisionVersion is the short revision, "-dirty" when modified; "" with
// no revision.
func (i Info) revisionVersion() string {
	if i.Revision == "" {
		return ""
	}
	if i.Modified {
		return short(i.Revision) + "-dirty"
	}
	return short(i.Revision)
}

// short is the first revisionLen characters of a revision.
func short(rev string) string {
	if len(rev) > revisionLen {
		return rev[:revisionLen]
	}
	return rev
}

// or is the first of vs that is not empty.
func or(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
