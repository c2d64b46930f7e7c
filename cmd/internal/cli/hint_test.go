package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// A start that timed out says where to look: permissions first.
func TestExplainStartTimeout(t *testing.T) {
	err := fmt.Errorf("create or update stream PUSH_DLQ: %w", context.DeadlineExceeded)
	if got := ExplainStart(err); !strings.HasPrefix(got, err.Error()+" (") || !strings.Contains(got, "--nats-inbox-prefix") {
		t.Fatalf("ExplainStart = %q", got)
	}
	if got := ExplainStart(context.Canceled); got != context.Canceled.Error() {
		t.Fatalf("ExplainStart(canceled) = %q; want the error alone", got)
	}
}
