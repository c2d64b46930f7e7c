package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/bus"
	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/protocol"
)

// health tracks whether the node should get clients: NATS connected,
// JetStream answering, listeners up, not draining, not at its session
// limit.
type health struct {
	conn     *bus.Conn
	js       jetstream.JetStream
	srv      *edge.Server // set as the graph is built, before any check runs
	serving  atomic.Bool  // listeners are up
	draining atomic.Bool  // the node is stopping
}

// jsProbeTimeout bounds one JetStream check.
const jsProbeTimeout = time.Second

// check answers whether the node is ready, and if not, why. It asks
// JetStream, for at most jsProbeTimeout.
func (h *health) check(ctx context.Context) []string {
	var why []string
	if h.draining.Load() {
		why = append(why, "draining: the node is stopping")
	}
	if !h.serving.Load() {
		why = append(why, "not accepting clients")
	}
	if h.srv != nil && h.srv.Full() {
		why = append(why, "at the session limit (--max-sessions): ready again at 90 % of it")
	}
	if !h.conn.NC.IsConnected() {
		why = append(why, "NATS is not connected ("+h.conn.NC.Status().String()+")")
	}
	ctx, cancel := context.WithTimeout(ctx, jsProbeTimeout)
	defer cancel()
	if _, err := h.js.AccountInfo(ctx); err != nil {
		why = append(why, "JetStream is not answering: "+err.Error())
	}
	return why
}

// admin is the admin listener: /metrics, /healthz, /readyz, /sessions.
type admin struct {
	srv    *http.Server
	ln     net.Listener
	served chan struct{} // closed when Serve has returned
}

// newAdmin listens on addr, with TLS if tlsCfg is not nil, and serves;
// sessions lists the connections the node holds, for /sessions.
func newAdmin(addr string, tlsCfg *tls.Config, pprofOn bool, cmdline []string, reg *prometheus.Registry, h *health,
	sessions func() []protocol.SessionInfo, log *zap.Logger) (*admin, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	mux := http.NewServeMux()
	if pprofOn {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", serveCmdline(cmdline))
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(log)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if why := h.check(r.Context()); len(why) > 0 {
			http.Error(w, "not ready: "+strings.Join(why, "; "), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /sessions", serveSessions(sessions))
	a := &admin{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln, served: make(chan struct{})}
	go func() {
		defer close(a.served)
		if err := a.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin listener failed", zap.Error(err))
		}
	}()
	return a, nil
}

// stop shuts the listener down within ctx and waits for it to end.
func (a *admin) stop(ctx context.Context) error {
	err := a.srv.Shutdown(ctx)
	<-a.served
	return err
}

// serveSessions answers GET /sessions with the JSON list of the
// connections the node holds (read-only: nothing on the admin listener
// changes a session).
func serveSessions(sessions func() []protocol.SessionInfo) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(sessions())
	}
}

// serveCmdline is pprof.Cmdline serving args, the command line with its
// secrets redacted (Config.Cmdline), instead of os.Args.
func serveCmdline(args []string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, strings.Join(args, "\x00"))
	}
}

// readyGauge exports the node's readiness as pushfabric_ready, checked at
// each scrape.
func readyGauge(h *health) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pushfabric_ready",
		Help: "1 when the node should get clients (NATS connected, JetStream answering, listening, not draining, not at its session limit), 0 otherwise."},
		func() float64 {
			if len(h.check(context.Background())) > 0 {
				return 0
			}
			return 1
		})
}
