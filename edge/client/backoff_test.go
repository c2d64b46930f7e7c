package client_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pushfabric/pushfabric/edge/client"
)

func TestBackoffCeiling(t *testing.T) {
	b := client.Backoff{Base: time.Second, Max: 10 * time.Second}
	for n, want := range []time.Duration{1, 2, 4, 8, 10, 10} {
		if got := b.Ceiling(n); got != want*time.Second {
			t.Errorf("Ceiling(%d) = %v; want %v", n, got, want*time.Second)
		}
	}
	if got := b.Ceiling(1000); got != 10*time.Second {
		t.Errorf("Ceiling(1000) = %v; want the cap", got)
	}
	if got := b.Delay(2, 0.5); got != 2*time.Second {
		t.Errorf("Delay(2, 0.5) = %v; want 2s", got)
	}
}

// Full jitter: with the default random source the waits spread over the
// whole of [0, ceiling), not bunched at the top.
func TestBackoffJitters(t *testing.T) {
	b := client.Backoff{Base: time.Second, Max: time.Second}
	low, seen := 0, map[time.Duration]bool{}
	for range 200 {
		d := b.Delay(0, rand.Float64())
		if d < 0 || d >= time.Second {
			t.Fatalf("delay %v outside [0, 1s)", d)
		}
		if d < 500*time.Millisecond {
			low++
		}
		seen[d] = true
	}
	if len(seen) < 190 || low < 50 || low > 150 {
		t.Fatalf("%d distinct delays, %d of 200 under half the ceiling; want them spread", len(seen), low)
	}
}

// Connect to a port nothing listens on: each attempt waits a jittered
// delay under a ceiling that doubles up to the cap, as the states report,
// and after MaxAttempts it gives up. The clock is synctest's.
func TestConnectBacksOffAndGivesUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp://" + ln.Addr().String()
	ln.Close()
	synctest.Test(t, func(t *testing.T) {
		r := []float64{0.5, 0.25, 0.9, 0.1, 0.75}
		var gaps, delays []time.Duration
		last := time.Now()
		ro := client.ReconnectOptions{
			BaseDelay: time.Second, MaxDelay: 4 * time.Second, MaxAttempts: 6,
			Rand: func() float64 { v := r[0]; r = r[1:]; return v },
			OnState: func(st client.State) {
				if st.Kind == client.StateRetrying {
					delays = append(delays, st.Delay)
				}
			},
			Addr: func(int) string {
				gaps = append(gaps, time.Since(last))
				last = time.Now()
				return addr
			},
		}
		_, err := client.Connect(context.Background(), addr, client.Options{Session: "s"}, ro)
		if !errors.Is(err, client.ErrGaveUp) {
			t.Fatalf("Connect = %v; want ErrGaveUp", err)
		}
		want := []time.Duration{500 * time.Millisecond, 500 * time.Millisecond, 3600 * time.Millisecond, 400 * time.Millisecond, 3 * time.Second}
		if !slices.Equal(delays, want) || !slices.Equal(gaps[1:], want) || gaps[0] != 0 {
			t.Fatalf("delays %v, gaps between attempts %v; want %v", delays, gaps, want)
		}
	})
}
