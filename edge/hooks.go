package edge

import "github.com/pushfabric/pushfabric/edge/wire"

// JoinHooks is the Hooks that runs the hooks of each of hs in order,
// skipping those not set: a node's own (the NATS dispatcher's, say) and an
// application's can then share one server. Admit and OnConnect stop at the
// first error and return it, so a later hook never sees a client an
// earlier one refused; BeforeSend hands the frame, as each hook left it, to
// the next. A hook none of hs sets stays nil and costs nothing, and one
// only a single Hooks sets is that hook itself.
func JoinHooks(hs ...Hooks) Hooks {
	var l hookLists
	for _, h := range hs {
		l.add(h)
	}
	return Hooks{
		Admit:           pick(l.admit, firstError[string]),
		OnConnect:       pick(l.connect, firstError[*Conn]),
		BeforeSend:      pick(l.beforeSend, each2[*Conn, *Frame]),
		OnCommandEnd:    pick(l.commandEnd, each3[*Conn, *Request, error]),
		OnProtocolError: pick(l.protocolError, each2[*Conn, *ProtocolError]),
		OnClose:         pick(l.close, each3[*Conn, wire.CloseReason, error]),
	}
}

// hookLists are the hooks of several Hooks that are set, field by field.
type hookLists struct {
	admit         []func(string) error
	connect       []func(*Conn) error
	beforeSend    []func(*Conn, *Frame)
	commandEnd    []func(*Conn, *Request, error)
	protocolError []func(*Conn, *ProtocolError)
	close         []func(*Conn, wire.CloseReason, error)
}

func (l *hookLists) add(h Hooks) {
	l.admit = appendSet(l.admit, h.Admit, h.Admit != nil)
	l.connect = appendSet(l.connect, h.OnConnect, h.OnConnect != nil)
	l.beforeSend = appendSet(l.beforeSend, h.BeforeSend, h.BeforeSend != nil)
	l.commandEnd = appendSet(l.commandEnd, h.OnCommandEnd, h.OnCommandEnd != nil)
	l.protocolError = appendSet(l.protocolError, h.OnProtocolError, h.OnProtocolError != nil)
	l.close = appendSet(l.close, h.OnClose, h.OnClose != nil)
}

func appendSet[F any](fs []F, f F, set bool) []F {
	if !set {
		return fs
	}
	return append(fs, f)
}

// pick is no hook for none, the hook itself for one, and join's for more.
func pick[F any](fs []F, join func([]F) F) F {
	switch len(fs) {
	case 0:
		var none F
		return none
	case 1:
		return fs[0]
	}
	return join(fs)
}

func firstError[A any](fs []func(A) error) func(A) error {
	return func(a A) error {
		for _, f := range fs {
			if err := f(a); err != nil {
				return err
			}
		}
		return nil
	}
}

func each2[A, B any](fs []func(A, B)) func(A, B) {
	return func(a A, b B) {
		for _, f := range fs {
			f(a, b)
		}
	}
}

func each3[A, B, C any](fs []func(A, B, C)) func(A, B, C) {
	return func(a A, b B, c C) {
		for _, f := range fs {
			f(a, b, c)
		}
	}
}
