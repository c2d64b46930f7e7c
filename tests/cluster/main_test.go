package cluster

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/pushfabric/pushfabric/tests/natstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(removingBinaries{m}, natstest.IgnoredGoroutines()...)
}

// removingBinaries runs the tests, then removes the binaries they built
// (binary): about 90 MB a run, which would otherwise stay in the
// temporary directory.
type removingBinaries struct{ m *testing.M }

func (r removingBinaries) Run() int {
	code := r.m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	return code
}
