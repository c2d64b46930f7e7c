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
