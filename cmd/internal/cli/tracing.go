package cli

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TracingFromEnv sets up OpenTelemetry tracing from the standard OTEL_*
// environment variables: an OTLP/HTTP exporter when OTEL_TRACES_EXPORTER is
// otlp or an OTLP endpoint is set. With neither, or OTEL_TRACES_EXPORTER=none,
// tracing is off and costs nothing. The returned shutdown flushes spans.
func TracingFromEnv(ctx context.Context) (trace.TracerProvider, func(context.Context) error, error) {
	exporter := os.Getenv("OTEL_TRACES_EXPORTER")
	endpoint := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") + os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	switch {
	case exporter == "none", exporter == "" && endpoint == "":
		return nil, func(context.Context) error { return nil }, nil
	case exporter != "" && exporter != "otlp":
		return nil, nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: only otlp (or none) is supported", exporter)
	}
	if p := os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" && p != "http/protobuf" {
		return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q: only http/protobuf is supported", p)
	}
	exp, err := otlptracehttp.New(ctx) // endpoint, headers, TLS from OTEL_EXPORTER_OTLP_*
	if err != nil {
		return nil, nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp)) // service name etc. from OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return tp, tp.Shutdown, nil
}
