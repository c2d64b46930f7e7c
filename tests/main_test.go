package tests

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/pushfabric/pushfabric/tests/natstest"
)

// TestMain fails a run that leaks goroutines and removes the binaries
// the tests built, whatever the outcome (a run the test timeout kills
// leaves them).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(natstest.IgnoredGoroutines(), goleak.Cleanup(func(code int) {
		removeBinaries()
		os.Exit(code)
	}))...)
}
