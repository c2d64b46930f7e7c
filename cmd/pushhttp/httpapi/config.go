package httpapi

import (
	"errors"
	"fmt"
	"time"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/internal/check"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// Config bounds what a Handler takes. DefaultConfig's values are
// pushhttp's flag defaults.
type Config struct {
	Prefix string // subject prefix of pushes
	// MaxPayload bounds one push's payload: by default the edge's frame
	// size limit (a larger push could never reach a client).
	MaxPayload int
	// MaxBatch bounds the pushes of one batch, MaxBatchBytes its body.
	MaxBatch      int
	MaxBatchBytes int64
	// Timeout is how long a push waits for its ack unless the request's
	// timeout parameter says otherwise, up to MaxTimeout.
	Timeout    time.Duration
	MaxTimeout time.Duration
}

// DefaultConfig is a Handler's configuration unless told otherwise.
func DefaultConfig() Config {
	return Config{
		Prefix:        protocol.DefaultPrefix,
		MaxPayload:    wire.DefaultMaxFrameSize,
		MaxBatch:      1000,
		MaxBatchBytes: 8 << 20,
		Timeout:       10 * time.Second,
		MaxTimeout:    2 * time.Minute,
	}
}

// Validate reports every field out of range.
func (c Config) Validate() error {
	var errs []error
	if !push.ValidToken(c.Prefix) {
		errs = check.Field(errs, "Prefix", "must be one subject token, got %q", c.Prefix)
	}
	errs = check.Positive(errs, "MaxPayload", c.MaxPayload)
	errs = check.Positive(errs, "MaxBatch", c.MaxBatch)
	errs = check.Positive(errs, "MaxBatchBytes", c.MaxBatchBytes)
	errs = check.Positive(errs, "Timeout", c.Timeout)
	errs = check.Positive(errs, "MaxTimeout", c.MaxTimeout)
	if c.Timeout > c.MaxTimeout {
		errs = append(errs, &check.FieldError{Field: "Timeout", With: "MaxTimeout",
			Problem: fmt.Sprintf("do not fit: the first must be at most the second, got %v and %v", c.Timeout, c.MaxTimeout)})
	}
	return errors.Join(errs...)
}
