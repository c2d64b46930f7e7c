package check

import (
	"errors"
	"testing"
	"time"
)

func TestChecks(t *testing.T) {
	var errs []error
	errs = Positive(errs, "queue length", 0)
	errs = Positive(errs, "buffer", 1)
	errs = NotNegative(errs, "ping interval", -5*time.Second)
	errs = NotNegative(errs, "burst", 0)
	want := "queue length must be positive, got 0\nping interval must not be negative, got -5s"
	if got := errors.Join(errs...); got == nil || got.Error() != want {
		t.Fatalf("got %v; want %q", got, want)
	}
}
