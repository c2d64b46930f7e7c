package wire

import "testing"

// Every close reason has its own WebSocket code and says what it means;
// one this version does not know has neither.
func TestCloseReasons(t *testing.T) {
	codes := map[uint16]CloseReason{}
	for _, r := range CloseReasons {
		if r.Meaning() == "" {
			t.Errorf("%s has no meaning", r)
		}
		if prev, dup := codes[r.WSCode()]; dup || r.WSCode() == 1011 {
			t.Errorf("%s has WebSocket code %d (as %q)", r, r.WSCode(), prev)
		}
		codes[r.WSCode()] = r
	}
	if r := CloseReason("from_the_future"); r.Meaning() != "" || r.WSCode() != 1011 {
		t.Errorf("an unknown reason: %q, %d", r.Meaning(), r.WSCode())
	}
}

// The codes are part of the protocol (docs/protocol.md): a reason keeps
// its code from one version to the next.
func TestCloseReasonCodesAreStable(t *testing.T) {
	want := map[CloseReason]uint16{
		CloseNormal: 1000, CloseShutdown: 1001, CloseProtocol: 1002,
		CloseReplaced: 4000, CloseAuth: 4001, CloseTooSlow: 4002, CloseIdle: 4003,
		CloseRevoked: 4004, CloseTokenExpired: 4005, CloseOverloaded: 4006,
	}
	if len(CloseReasons) != len(want) {
		t.Errorf("%d close reasons; want %d", len(CloseReasons), len(want))
	}
	for r, code := range want {
		if got := r.WSCode(); got != code {
			t.Errorf("%s: WebSocket code %d; want %d", r, got, code)
		}
	}
}
