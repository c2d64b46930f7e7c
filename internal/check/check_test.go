package check

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestChecks(t *testing.T) {
	var errs []error
	errs = Positive(errs, "QueueLen", 0)
	errs = Positive(errs, "Buffer", 1)
	errs = NotNegative(errs, "PingInterval", -5*time.Second)
	errs = NotNegative(errs, "Burst", 0)
	errs = Together(errs, "User", true, "PasswordFile", false)
	errs = Together(errs, "TLSCert", true, "TLSKey", true)
	errs = Field(errs, "Replicas", "must be 1 to 5, got %d", 9)
	want := "QueueLen must be positive, got 0\nPingInterval must not be negative, got -5s\n" +
		"User and PasswordFile go together: give both or neither\nReplicas must be 1 to 5, got 9"
	if got := errors.Join(errs...); got == nil || got.Error() != want {
		t.Fatalf("got %v; want %q", got, want)
	}
}

// In places every field error of a joined error in its section, through
// any nesting, and leaves other errors as they are; Rename does the same
// for any name.
func TestInAndRename(t *testing.T) {
	other := errors.New("prefix is bad")
	err := errors.Join(
		errors.Join(Positive(nil, "QueueLen", 0)...),
		errors.Join(Together(nil, "User", true, "PasswordFile", false)...),
		other)
	in := In("Edge", err)
	want := "Edge.QueueLen must be positive, got 0\nEdge.User and Edge.PasswordFile go together: give both or neither\nprefix is bad"
	if in.Error() != want {
		t.Fatalf("In: %q; want %q", in, want)
	}
	if !errors.Is(in, other) {
		t.Error("In lost the error that is not a field's")
	}
	flags := Rename(in, func(f string) string { return "--" + strings.ToLower(strings.TrimPrefix(f, "Edge.")) })
	if want := "--queuelen must be positive, got 0\n--user and --passwordfile go together"; !strings.HasPrefix(flags.Error(), want) {
		t.Fatalf("Rename: %q; want it to start %q", flags, want)
	}
	var fe *FieldError
	if !errors.As(flags, &fe) || fe.Field != "--queuelen" {
		t.Fatalf("Rename's errors are not FieldErrors: %#v", fe)
	}
	if In("Edge", nil) != nil || Rename(fmt.Errorf("plain"), strings.ToUpper).Error() != "plain" {
		t.Error("In or Rename changed what has no field")
	}
}
