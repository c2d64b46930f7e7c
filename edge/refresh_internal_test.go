package edge

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/pushfabric/pushfabric/edge/wire"
	"github.com/pushfabric/pushfabric/push"
)

// Every push of a connection whose token expires is accounted for as for
// any other end: its receipt-pushes, written and unconfirmed or queued,
// follow the session (Moved), one made in the process is dead-lettered
// unconfirmed, and a plain push still queued is dead-lettered closed. The
// close comes at the expiry, not before.
func TestTokenExpiryAccountsForEveryPush(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l confirmLog
		var sink deadLetters
		cfg := DefaultConfig()
		cfg.ReceiptWindow, cfg.PingInterval, cfg.IdleTimeout = 1, 0, 0
		srv := newTestServer(t, cfg, Options{Sink: &sink})
		server, _ := newPipe(t, false)
		c := srv.newConn(server, server.RemoteAddr(), tcpFraming{}, "s1")
		c.expires = time.Now().Add(10 * time.Second)
		if !srv.admit(c) {
			t.Fatal("server refused the connection")
		}
		synctest.Wait()
		pushEach(t, c, push.High, l.push("r1"), l.push("r2"), Envelope{Frame: Frame{ID: "local", WantsReceipt: true}})
		pushEach(t, c, push.Low, Envelope{Frame: Frame{ID: "plain"}})
		time.Sleep(9 * time.Second)
		synctest.Wait()
		select {
		case <-c.Done():
			t.Fatal("closed before its token's expiry")
		default:
		}
		time.Sleep(2 * time.Second)
		<-c.Done()
		wantEndAccounting(t, &l, &sink, "closed")
		s := srv.Stats()
		if s.Disconnects[wire.CloseTokenExpired] != 1 || s.Unconfirmed[UnconfirmedHandedOver] != 2 || s.Unconfirmed[UnconfirmedDeadLettered] != 1 || s.UnconfirmedNow != 0 {
			t.Fatalf("disconnects %v, unconfirmed %v, now %d; want token_expired, 2 handed over, 1 dead-lettered, 0 now", s.Disconnects, s.Unconfirmed, s.UnconfirmedNow)
		}
	})
}
