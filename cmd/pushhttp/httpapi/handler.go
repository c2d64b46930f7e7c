package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel/propagation"
	"go.uber.org/zap"

	"github.com/pushfabric/pushfabric/internal/check"
	"github.com/pushfabric/pushfabric/producer"
	"github.com/pushfabric/pushfabric/protocol"
	"github.com/pushfabric/pushfabric/push"
)

// Handler serves pushhttp's routes (docs/http.md):
//
//	POST /v1/push/<session>/<priority>        one session
//	POST /v1/push/group/<group>/<priority>    every member of a group
//	POST /v1/push/all/<priority>              every connection
//	POST /v1/push                             a batch (JSON)
//	GET  /healthz                             200 while NATS is connected, else 503
//
// Every /v1/push route wants credentials (Auth), checked before anything
// else of the request is read. A handler waits for the push's
// acknowledgement (at most the request's timeout), so a server's write
// timeout must allow for Config.MaxTimeout.
type Handler struct {
	cfg  Config
	nc   *nats.Conn
	p    *producer.Producer
	auth Auth
	log  *zap.Logger
	mux  *http.ServeMux
}

// New builds a Handler that pushes with p, a started producer on nc (nc
// tells whether NATS is there: 503 when not). auth must take keys, tokens
// or both. log may be nil.
func New(cfg Config, nc *nats.Conn, p *producer.Producer, auth Auth, log *zap.Logger) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, check.In("httpapi.Config", err)
	}
	switch {
	case nc == nil || p == nil:
		return nil, errors.New("httpapi: a NATS connection and a producer are needed")
	case auth.Keys == nil && auth.JWT == nil:
		return nil, errors.New("httpapi: no authentication (keys, tokens or both): pushhttp is never open")
	}
	if log == nil {
		log = zap.NewNop()
	}
	h := &Handler{cfg: cfg, nc: nc, p: p, auth: auth, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("/healthz", h.health)
	h.mux.HandleFunc("/v1/push", h.authed(h.pushBatch))
	h.mux.HandleFunc("/v1/push/group/{group}/{priority}", h.authed(h.pushGroup))
	h.mux.HandleFunc("/v1/push/all/{priority}", h.authed(h.pushAll))
	h.mux.HandleFunc("/v1/push/{session}/{priority}", h.authed(h.pushSession))
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.refuse(w, r, &apiError{Status: http.StatusNotFound, Code: codeNotFound, Message: "no such route: see docs/http.md"})
	})
	return h, nil
}

// ServeHTTP serves one request. A path with an empty, . or .. segment
// names no route: ServeMux would redirect it to the path cleaned (a 307,
// which a client may follow with its body, pushing where the caller did
// not write).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p != "" && path.Clean(p) != p {
		h.refuse(w, r, &apiError{Status: http.StatusNotFound, Code: codeNotFound,
			Message: "no such route: a path with an empty, . or .. segment (see docs/http.md)"})
		return
	}
	h.mux.ServeHTTP(w, r)
}

// authed lets a POST through to next once its credentials are good.
func (h *Handler) authed(next func(http.ResponseWriter, *http.Request, Identity)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, e := h.auth.authenticate(r)
		if e != nil {
			h.refuse(w, r, e)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			h.refuse(w, r, &apiError{Status: http.StatusMethodNotAllowed, Code: codeMethodNotAllowed, Message: r.Method + ": only POST pushes"})
			return
		}
		next(w, r, id)
	}
}

func (h *Handler) health(w http.ResponseWriter, r *http.Request) {
	if e := h.ready(); e != nil {
		h.refuse(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// ready refuses a push while NATS is not connected (503): nats.go would
// hold it in its reconnect buffer, and the caller would wait for nothing.
func (h *Handler) ready() *apiError {
	if h.nc.IsConnected() {
		return nil
	}
	return &apiError{Status: http.StatusServiceUnavailable, Code: codeUnavailable,
		Message: "not connected to NATS (" + h.nc.Status().String() + "); try again later"}
}

// request is what a push request to one target has given once decoded.
type request struct {
	prio    push.Priority
	params  params
	opts    []producer.Option
	id      string
	payload []byte
}

// decode reads the parts of a push request all routes share: the
// priority in the path, the query, the headers and the body, in that
// order, checked against what id may push to (kind and name).
func (h *Handler) decode(w http.ResponseWriter, r *http.Request, id Identity, kind TargetKind, name string) (request, *apiError) {
	var req request
	prio, err := push.ParsePriority(r.PathValue("priority"))
	if err != nil {
		return req, badRequest("%v", err)
	}
	if e := id.mayPush(kind, name); e != nil {
		return req, e
	}
	prm, err := requestParams(r, kind != TargetSession, h.cfg.Timeout, h.cfg.MaxTimeout)
	if err != nil {
		return req, badRequest("%v", err)
	}
	opts, pid, err := withID(headerOptions(r.Header))
	if err != nil {
		return req, badRequest("%v", err)
	}
	body, e := readBody(w, r, int64(h.cfg.MaxPayload))
	if e != nil {
		return req, e
	}
	return request{prio: prio, params: prm, opts: opts, id: pid, payload: body}, h.ready()
}

// withID gives the push an id of its own when its headers named none,
// so that every answer, a failure's too, can name it (the caller sends a
// push that was not acknowledged again with the same id).
func withID(opts []producer.Option, err error) ([]producer.Option, string, error) {
	if err != nil {
		return nil, "", err
	}
	m := &nats.Msg{Header: nats.Header{}}
	_ = tryOptionsOn(m, opts)
	if id := m.Header.Get(protocol.HeaderID); id != "" {
		return opts, id, nil
	}
	id := nuid.Next()
	return append(opts, producer.WithID(id)), id, nil
}

func (h *Handler) pushSession(w http.ResponseWriter, r *http.Request, id Identity) {
	session := r.PathValue("session")
	if err := push.CheckSession(session); err != nil {
		h.refuse(w, r, badRequest("%v", err))
		return
	}
	req, e := h.decode(w, r, id, TargetSession, session)
	if e != nil {
		h.refuse(w, r, e)
		return
	}
	ctx, cancel := pushContext(r, req.params.timeout)
	defer cancel()
	ack, err := h.p.Push(ctx, session, req.prio, req.payload, append(req.opts, producer.WithAck(req.params.ack))...)
	if err != nil {
		h.failed(w, r, id, pushError(err, req.id))
		return
	}
	res := h.ackResult(ack, session, req.prio)
	h.log.Debug("push", zap.String("by", id.Name), zap.String("session", session), zap.String("id", ack.ID), zap.String("status", ack.Status))
	writeJSON(w, res.code, res)
}

func (h *Handler) pushGroup(w http.ResponseWriter, r *http.Request, id Identity) {
	group := r.PathValue("group")
	if err := push.CheckGroup(group); err != nil {
		h.refuse(w, r, badRequest("%v", err))
		return
	}
	h.toGroup(w, r, id, TargetGroup, group)
}

func (h *Handler) pushAll(w http.ResponseWriter, r *http.Request, id Identity) {
	h.toGroup(w, r, id, TargetAll, push.AllGroup)
}

// toGroup pushes to a group's members, or every connection (group
// push.AllGroup), and answers with the nodes' acknowledgements.
func (h *Handler) toGroup(w http.ResponseWriter, r *http.Request, id Identity, kind TargetKind, group string) {
	req, e := h.decode(w, r, id, kind, group)
	if e != nil {
		h.refuse(w, r, e)
		return
	}
	ctx, cancel := pushContext(r, req.params.timeout)
	defer cancel()
	a, err := h.p.PushGroup(ctx, group, req.prio, req.payload, req.opts...)
	if err != nil {
		h.failed(w, r, id, pushError(err, req.id))
		return
	}
	res := groupResult{GroupAck: a, code: groupStatus(a)}
	if a.Offline {
		res.DeadLetter = protocol.DeadLetterSubject(h.cfg.Prefix, push.ReasonOffline, protocol.GroupLetterSession(group), req.prio.String())
	}
	h.log.Debug("group push", zap.String("by", id.Name), zap.String("group", group), zap.String("id", a.ID), zap.Int("members", a.Members))
	writeJSON(w, res.code, res)
}

func (h *Handler) pushBatch(w http.ResponseWriter, r *http.Request, id Identity) {
	prm, err := requestParams(r, false, h.cfg.Timeout, h.cfg.MaxTimeout)
	if err != nil {
		h.refuse(w, r, badRequest("%v", err))
		return
	}
	msgs, e := h.decodeBatch(w, r, id, prm.ack)
	if e == nil {
		e = h.ready()
	}
	if e != nil {
		h.refuse(w, r, e)
		return
	}
	ctx, cancel := pushContext(r, prm.timeout)
	defer cancel()
	results := h.p.PublishBatch(ctx, msgs)
	res := batchResponse{Results: make([]batchResult, len(results))}
	code := http.StatusOK
	for i, pr := range results {
		res.Results[i] = h.batchResult(pr, msgs[i])
		res.Counts.add(res.Results[i])
		if c := res.Results[i].Code; res.Results[i].Error != "" && c > code {
			code = c
		}
	}
	if code != http.StatusOK {
		h.log.Warn("batch push failed", zap.String("by", id.Name), zap.Int("pushes", len(msgs)), zap.Int("failed", res.Counts.Failed))
	}
	writeJSON(w, code, res)
}

// decodeBatch reads a batch body and checks each push against what id
// may push to; each gets an id of its own unless it names one, and the
// ack mode of the query unless its headers name one.
func (h *Handler) decodeBatch(w http.ResponseWriter, r *http.Request, id Identity, ack string) ([]producer.Message, *apiError) {
	body, e := readBody(w, r, h.cfg.MaxBatchBytes)
	if e != nil {
		return nil, e
	}
	msgs, err := DecodeBatch(body, BatchLimits{MaxItems: h.cfg.MaxBatch, MaxPayload: h.cfg.MaxPayload})
	var be *batchError
	switch {
	case errors.As(err, &be) && be.large:
		e := tooLarge("%v", err)
		e.Index = &be.index
		return nil, e
	case errors.As(err, &be):
		e := badRequest("%v", err)
		e.Index = &be.index
		return nil, e
	case errors.Is(err, errTooMany):
		return nil, tooLarge("%v", err)
	case err != nil:
		return nil, badRequest("%v", err)
	}
	for i := range msgs {
		if e := id.mayPush(TargetSession, msgs[i].Session); e != nil {
			e.Index = &i
			return nil, e
		}
		opts, _, _ := withID(msgs[i].Options, nil)
		msgs[i].Options = append([]producer.Option{producer.WithAck(ack)}, opts...) // a push's own Push-Ack comes after: it wins
	}
	return msgs, nil
}

// pushContext is the context a request's push is sent in: ended by the
// request's timeout (or the caller going away), and carrying the trace
// context of its traceparent header, so that the producer's span, when
// tracing is on, is a child of the caller's.
func pushContext(r *http.Request, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	return context.WithTimeout(ctx, timeout)
}

// refuse answers a request refused before anything was sent.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, e *apiError) {
	if e.challenge != "" {
		w.Header().Set("WWW-Authenticate", e.challenge)
	}
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "2")
	}
	h.log.Debug("request refused", zap.String("path", r.URL.Path), zap.Int("status", e.Status), zap.String("why", e.Message))
	writeJSON(w, e.Status, e)
}

// failed answers a push whose outcome is not known.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, id Identity, e *apiError) {
	h.log.Warn("push failed", zap.String("by", id.Name), zap.String("path", r.URL.Path), zap.Int("status", e.Status), zap.String("why", e.Message))
	h.refuse(w, r, e)
}

// writeJSON answers with v as one line of JSON (< and > as they are: no
// HTML reads it).
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
