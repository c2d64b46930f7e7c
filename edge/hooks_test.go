package edge_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/pushfabric/pushfabric/edge"
	"github.com/pushfabric/pushfabric/edge/wire"
)

// Joined hooks run in order; Admit and OnConnect stop at the first error;
// BeforeSend passes on the frame as rewritten; a hook nobody sets stays nil.
func TestJoinHooks(t *testing.T) {
	var ran []string
	refused := errors.New("refused")
	first := edge.Hooks{
		Admit:      func(string) error { ran = append(ran, "admit 1"); return nil },
		OnConnect:  func(*edge.Conn) error { ran = append(ran, "connect 1"); return refused },
		BeforeSend: func(_ *edge.Conn, f *edge.Frame) { f.Payload = append(f.Payload, '1') },
		OnClose:    func(*edge.Conn, wire.CloseReason, error) { ran = append(ran, "close 1") },
	}
	second := edge.Hooks{
		Admit:      func(string) error { ran = append(ran, "admit 2"); return refused },
		OnConnect:  func(*edge.Conn) error { ran = append(ran, "connect 2"); return nil },
		BeforeSend: func(_ *edge.Conn, f *edge.Frame) { f.Payload = append(f.Payload, '2') },
		OnClose:    func(*edge.Conn, wire.CloseReason, error) { ran = append(ran, "close 2") },
	}
	third := edge.Hooks{Admit: func(string) error { ran = append(ran, "admit 3"); return nil }}
	h := edge.JoinHooks(first, edge.Hooks{}, second, third)
	if err := h.Admit("s"); err != refused {
		t.Errorf("Admit: %v; want the second hook's error", err)
	}
	if err := h.OnConnect(nil); err != refused {
		t.Errorf("OnConnect: %v; want the first hook's error", err)
	}
	h.OnClose(nil, wire.CloseNormal, nil)
	if want := []string{"admit 1", "admit 2", "connect 1", "close 1", "close 2"}; !slices.Equal(ran, want) {
		t.Errorf("ran %q; want %q", ran, want)
	}
	f := edge.Frame{}
	h.BeforeSend(nil, &f)
	if string(f.Payload) != "12" {
		t.Errorf("BeforeSend left %q; want 12", f.Payload)
	}
	if h.OnCommandEnd != nil || h.OnProtocolError != nil {
		t.Error("hooks no one set are not nil")
	}
	if none := edge.JoinHooks(); none.Admit != nil || none.OnConnect != nil || none.BeforeSend != nil || none.OnClose != nil {
		t.Error("JoinHooks() set hooks")
	}
}
