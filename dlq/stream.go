package dlq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushfabric/pushfabric/internal/check"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// StreamConfig are the dead-letter stream's limits. (The prefix of the
// subjects it keeps is the node's, which [EnsureStream] takes beside it.)
type StreamConfig struct {
	MaxAge            time.Duration // how long a dead letter is kept
	MaxBytes          int64         // the stream's size limit; the oldest go first
	MaxMsgsPerSubject int64         // per reason, session and priority
	Replicas          int           // 1 to 5; 0: AutoReplicas
}

// AutoReplicas, as StreamConfig.Replicas, leaves the replicas to
// EnsureStream: an existing stream keeps its own; a new one gets 1 from a
// server that is in no cluster (its INFO names none), and from a cluster
// ClusterReplicas where it can place them, else 1. An edge's NATS user may
// not read the cluster's size, so that is tried, not asked.
const AutoReplicas = 0

// ClusterReplicas is how many replicas a new stream gets in a cluster
// with AutoReplicas.
const ClusterReplicas = 3

// DefaultStreamConfig keeps dead letters a week, up to 1 GiB, 100,000 per
// reason, session and priority, with AutoReplicas.
func DefaultStreamConfig() StreamConfig {
	return StreamConfig{
		MaxAge:            7 * 24 * time.Hour,
		MaxBytes:          1 << 30,
		MaxMsgsPerSubject: 100_000,
		Replicas:          AutoReplicas,
	}
}

// Validate reports every field out of range.
func (c StreamConfig) Validate() error {
	var errs []error
	errs = check.Positive(errs, "MaxAge", c.MaxAge)
	errs = check.Positive(errs, "MaxBytes", c.MaxBytes)
	errs = check.Positive(errs, "MaxMsgsPerSubject", c.MaxMsgsPerSubject)
	if c.Replicas < 0 || c.Replicas > 5 {
		errs = check.Field(errs, "Replicas", "must be 1 to 5, or 0 (AutoReplicas), got %d", c.Replicas)
	}
	return errors.Join(errs...)
}

// dedupeWindow absorbs retried writes of the same dead letter.
const dedupeWindow = 10 * time.Minute

func (c StreamConfig) stream(prefix string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              protocol.DeadLetterStream,
		Description:       "pushfabric dead letters: pushes that could not be delivered, with the reason",
		Subjects:          []string{protocol.DeadLetterPrefix(prefix) + ".>"},
		Storage:           jetstream.FileStorage,
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxAge:            c.MaxAge,
		MaxBytes:          c.MaxBytes,
		MaxMsgsPerSubject: c.MaxMsgsPerSubject,
		Duplicates:        dedupeWindow,
		Replicas:          c.Replicas,
	}
}

// attemptTimeout bounds one try at making the stream. A JetStream API
// request can go unanswered for good: of three nodes creating the stream
// at once on a fresh cluster, one is answered and the others wait. Each
// try that times out is made again while the caller's context lasts (a
// create or update of the same config is idempotent).
const attemptTimeout = 5 * time.Second

// EnsureStream creates the dead-letter stream of the nodes with this
// subject prefix, or updates it in place to cfg's limits, with cfg's
// replicas or, for AutoReplicas, as AutoReplicas says. It is safe to call
// on every start and from every node, and at once from many.
func EnsureStream(ctx context.Context, js jetstream.JetStream, prefix string, cfg StreamConfig) (jetstream.Stream, error) {
	if !push.ValidToken(prefix) {
		return nil, fmt.Errorf("dlq prefix %q must be one subject token", prefix)
	}
	if err := cfg.Validate(); err != nil {
		return nil, check.In("dlq.StreamConfig", err)
	}
	for {
		try, cancel := context.WithTimeout(ctx, attemptTimeout)
		s, err := ensureStream(try, js, prefix, cfg)
		cancel()
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return s, err
		}
	}
}

// ensureStream is one try of EnsureStream, with cfg valid.
func ensureStream(ctx context.Context, js jetstream.JetStream, prefix string, cfg StreamConfig) (jetstream.Stream, error) {
	if cfg.Replicas != AutoReplicas {
		return ensure(ctx, js, prefix, cfg)
	}
	switch s, err := js.Stream(ctx, protocol.DeadLetterStream); {
	case err == nil:
		cfg.Replicas = s.CachedInfo().Config.Replicas // an existing stream keeps its own
		return ensure(ctx, js, prefix, cfg)
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, fmt.Errorf("stream %s: %w", protocol.DeadLetterStream, err)
	}
	if cfg.Replicas = 1; js.Conn().ConnectedClusterName() == "" { // a single server
		return ensure(ctx, js, prefix, cfg)
	}
	cfg.Replicas = ClusterReplicas
	s, err := ensure(ctx, js, prefix, cfg)
	if cannotPlace(err) { // a cluster of fewer servers
		cfg.Replicas = 1
		return ensure(ctx, js, prefix, cfg)
	}
	return s, err
}

// ensure creates or updates the stream to cfg.
func ensure(ctx context.Context, js jetstream.JetStream, prefix string, cfg StreamConfig) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, cfg.stream(prefix))
	if err != nil {
		return nil, fmt.Errorf("create or update stream %s: %w%s", protocol.DeadLetterStream, err, replicasHint(err, cfg.Replicas))
	}
	return s, nil
}

// Codes of the JetStream API errors for replicas the NATS system cannot
// place: a single server, or a cluster with fewer servers.
const (
	errReplicasNotSupported jetstream.ErrorCode = 10074 // replicas > 1 not supported in non-clustered mode
	errNoPeers              jetstream.ErrorCode = 10005 // no suitable peers for placement
)

// cannotPlace says whether err is the NATS system refusing a stream's
// replicas.
func cannotPlace(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == errReplicasNotSupported || apiErr.ErrorCode == errNoPeers)
}

// replicasHint says what to do about a stream the NATS system refused for
// its replicas, or nothing for another error.
func replicasHint(err error, replicas int) string {
	if replicas <= 1 || !cannotPlace(err) {
		return ""
	}
	return fmt.Sprintf(" (the stream asks for %d replicas: a single NATS server, or a cluster of fewer servers, holds 1; set --dlq-replicas to at most the cluster's size, or 0 to choose)", replicas)
}
