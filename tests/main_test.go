package tests

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/pushfabric/pushfabric/tests/natstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, natstest.IgnoredGoroutines()...)
}
