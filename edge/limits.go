package edge

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/pushfabric/pushfabric/edge/wire"
)

// The node's limits (Config.MaxSessions, ConnectRate, ConnectRatePerIP,
// MaxHandshakes, MaxPendingFrameBytes) are checked where what they bound
// begins: a socket in the accept loop, before any goroutine or buffer is
// spent on it; a session once its client is authenticated; a frame's
// memory as its bytes arrive. The client limits (ClientFrameRate,
// ClientByteRate, RequestRate) are token buckets the connection's reader
// owns, a few words each: no lock, no allocation, no goroutine. Each
// refusal is counted by its Limit* label.

// errOverLimit: the client went past one of its limits, or its frame
// could not have memory under the node's; the reader closes the
// connection with reason overloaded.
var errOverLimit = errors.New("over a limit")

// nodeLimits are a server's node-wide limits.
type nodeLimits struct {
	connects   *rate.Limiter // Config.ConnectRate; nil: none
	perIP      *ipLimiters   // Config.ConnectRatePerIP; nil: none
	handshakes atomic.Int64  // sockets accepted and not through their handshake
	pending    atomic.Int64  // bytes reserved by frames being read

	mu       sync.Mutex
	sessions int  // guarded by mu: connections admitted, or authenticated and about to be
	full     bool // guarded by mu: see Server.Full
}

// newNodeLimits makes the limiters cfg asks for.
func newNodeLimits(cfg *Config) *nodeLimits {
	l := &nodeLimits{}
	if cfg.ConnectRate > 0 {
		l.connects = rate.NewLimiter(cfg.ConnectRate, int(burstOf(cfg.ConnectRate, 0)))
	}
	if cfg.ConnectRatePerIP > 0 {
		l.perIP = newIPLimiters(cfg.ConnectRatePerIP, maxConnectSources)
	}
	return l
}

// burstOf is a bucket's size: burst, or one second's worth of r (at
// least one).
func burstOf(r rate.Limit, burst int) float64 {
	if burst > 0 {
		return float64(burst)
	}
	return max(1, float64(r))
}

// limitRefused counts one refusal at limit.
func (s *Server) limitRefused(limit string) {
	s.metrics.limits[limit].Inc()
}

// admitSocket decides, as the accept loop takes a socket, whether it may
// start its handshake: within the connect rates (the per-address one here
// only for a source that sends no PROXY header; transport checks the
// others by their header's address) and the handshakes in flight. A
// refused socket is told so, best effort, and closed. An admitted one has
// taken a handshake slot, which its handshake gives back.
func (s *Server) admitSocket(nc net.Conn, fr framing) bool {
	limit := s.socketLimit(nc.RemoteAddr())
	if limit == "" {
		return true
	}
	s.refuseSocket(nc, fr, limit)
	return false
}

// socketLimit is the limit a new socket from remote is over; "" if none.
func (s *Server) socketLimit(remote net.Addr) string {
	l := s.limits
	switch {
	case l.connects != nil && !l.connects.Allow():
		return LimitConnectRate
	case !s.proxies.trusts(remote) && !l.perIP.allow(remote, time.Now()):
		return LimitConnectRatePerIP
	case !s.startHandshake():
		return LimitHandshakes
	}
	return ""
}

// startHandshake takes a handshake slot, if one is free under
// Config.MaxHandshakes.
func (s *Server) startHandshake() bool {
	max := int64(s.cfg.MaxHandshakes)
	if n := s.limits.handshakes.Add(1); max > 0 && n > max {
		s.limits.handshakes.Add(-1)
		return false
	}
	s.metrics.handshakes.Inc()
	return true
}

// handshakeDone gives back the handshake slot admitSocket took.
func (s *Server) handshakeDone() {
	s.limits.handshakes.Add(-1)
	s.metrics.handshakes.Dec()
}

// refuseTimeout bounds the write of a refusal to a socket refused at a
// limit: its send buffer is empty, so the write does not wait.
const refuseTimeout = 100 * time.Millisecond

// refuseSocket counts a socket refused at limit before its handshake,
// tells the client, best effort, and closes it at once: a WebSocket client
// gets HTTP 429 (a connect rate) or 503 (handshakes) with Retry-After, a
// TCP client a close frame with reason overloaded. It reads nothing: a
// client whose request or hello has already arrived may see a reset
// instead.
func (s *Server) refuseSocket(nc net.Conn, fr framing, limit string) {
	s.limitRefused(limit)
	s.metrics.rejections[RejectOverloaded].Inc()
	s.log.Debug("socket refused at a limit", zap.String("limit", limit), zap.Stringer("remote", nc.RemoteAddr()))
	msg := "over the node's " + limit + " limit; try again later"
	var b []byte
	if _, ws := fr.(wsFraming); ws {
		status := http.StatusTooManyRequests
		if limit == LimitHandshakes {
			status = http.StatusServiceUnavailable
		}
		b = httpRefusal(status, msg)
	} else {
		b, _ = fr.appendFrame(nil, &Frame{Type: wire.TypeClose, Name: string(wire.CloseOverloaded), Payload: []byte(msg)})
	}
	_ = nc.SetWriteDeadline(time.Now().Add(refuseTimeout))
	_, _ = nc.Write(b)
	_ = nc.Close()
}

// httpRefusal is an HTTP response refusing a WebSocket upgrade for now:
// status, Retry-After: 1 and msg.
func httpRefusal(status int, msg string) []byte {
	msg += "\n"
	return []byte("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n" +
		"Retry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " + strconv.Itoa(len(msg)) +
		"\r\nConnection: close\r\n\r\n" + msg)
}

// reserveSession takes a session slot for an authenticated client about
// to hold session: always for a takeover of a session this node holds (it
// adds none: the connection it replaces gives its slot back as it ends),
// otherwise only below Config.MaxSessions. Each slot taken is given back
// once, by releaseSession.
func (s *Server) reserveSession(session string) bool {
	l, limit := s.limits, s.cfg.MaxSessions
	held := s.reg.Get(session) != nil
	l.mu.Lock()
	defer l.mu.Unlock()
	if limit > 0 && l.sessions >= limit && !held {
		return false
	}
	l.sessions++
	if limit > 0 && l.sessions >= limit {
		l.full = true
	}
	return true
}

// releaseSession gives back a slot reserveSession took.
func (s *Server) releaseSession() {
	l := s.limits
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sessions--
	if l.sessions <= s.cfg.MaxSessions*9/10 {
		l.full = false
	}
}

// Full reports whether the node is at its session limit
// (Config.MaxSessions): from the moment it holds that many connections
// until it holds no more than nine tenths of them, so that a load
// balancer watching readiness neither keeps sending clients to a full
// node nor flaps at the limit. Always false with no limit. It never
// blocks for long.
func (s *Server) Full() bool {
	s.limits.mu.Lock()
	defer s.limits.mu.Unlock()
	return s.limits.full
}

// maxConnectSources bounds the per-address connect buckets kept: 65,536
// of them take a few MiB.
const maxConnectSources = 1 << 16

// ipLimiters are the per-source connect buckets (Config.ConnectRatePerIP),
// one for each address (an IPv6 address's /64, which one client
// usually holds whole) that connected recently, at most max of them. A
// bucket that has filled up again is as good as none, so when the map is
// full those go first; if a spray of new addresses left none full, an
// eighth of the map goes, whatever it holds: memory stays bounded, and
// the spray is ConnectRate's to stop. Safe for concurrent use; a nil
// *ipLimiters allows everything.
type ipLimiters struct {
	r     rate.Limit
	burst int
	max   int
	mu    sync.Mutex
	m     map[netip.Addr]*rate.Limiter // guarded by mu
}

func newIPLimiters(r rate.Limit, max int) *ipLimiters {
	return &ipLimiters{r: r, burst: int(burstOf(r, 0)), max: max, m: make(map[netip.Addr]*rate.Limiter)}
}

// allow takes a token from addr's bucket at now; an address that is not
// an IP address is not limited.
func (l *ipLimiters) allow(addr net.Addr, now time.Time) bool {
	if l == nil {
		return true
	}
	key, ok := sourceKey(addr)
	if !ok {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[key]
	if b == nil {
		if len(l.m) >= l.max {
			l.evictLocked(now)
		}
		b = rate.NewLimiter(l.r, l.burst)
		l.m[key] = b
	}
	return b.AllowN(now, 1)
}

// evictLocked makes room: the full buckets go, then, if that freed less
// than an eighth, arbitrary ones until it has.
func (l *ipLimiters) evictLocked(now time.Time) {
	for k, b := range l.m {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.m, k)
		}
	}
	for k := range l.m {
		if len(l.m) <= l.max-max(1, l.max/8) {
			return
		}
		delete(l.m, k)
	}
}

// len is the number of buckets kept.
func (l *ipLimiters) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// sourceKey is the bucket key of a client address: an IPv4 address, or
// an IPv6 address's /64.
func sourceKey(addr net.Addr) (netip.Addr, bool) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(tcp.IP)
	if !ok {
		return netip.Addr{}, false
	}
	if a = a.Unmap(); a.Is6() {
		a = netip.PrefixFrom(a, 64).Masked().Addr()
	}
	return a, true
}

// bucket is a token bucket for one goroutine, with no lock: tokens at
// last, on the server's clock.
type bucket struct {
	tokens float64
	last   time.Duration
}

// take refills b to now at r tokens a second, up to burst, and takes n
// tokens if it holds at least n, or is full: a charge larger than the
// burst passes on a full bucket and leaves it in debt.
func (b *bucket) take(now time.Duration, r rate.Limit, burst, n float64) bool {
	b.tokens = min(burst, b.tokens+(now-b.last).Seconds()*float64(r))
	b.last = now
	if b.tokens < min(n, burst) {
		return false
	}
	b.tokens -= n
	return true
}

// clientLimits are one connection's buckets for what its client sends.
// Owned by the reader goroutine.
type clientLimits struct {
	frames, bytes, requests bucket
	charged                 int64 // input bytes charged to bytes so far
}

// fill starts every bucket full at now.
func (l *clientLimits) fill(cfg *Config, now time.Duration) {
	l.frames = bucket{burstOf(cfg.ClientFrameRate, cfg.ClientFrameBurst), now}
	l.bytes = bucket{burstOf(cfg.ClientByteRate, cfg.ClientByteBurst), now}
	l.requests = bucket{burstOf(cfg.RequestRate, cfg.RequestBurst), now}
}

// countFrame charges a client frame, and the bytes read since the last
// one, to the connection's buckets. Past ClientFrameRate or
// ClientByteRate it returns an error wrapping errOverLimit.
func (c *Conn) countFrame() error {
	cfg, l := &c.srv.cfg, &c.limits
	now := c.lastRead.Sub(c.srv.epoch)
	if cfg.ClientFrameRate > 0 && !l.frames.take(now, cfg.ClientFrameRate, burstOf(cfg.ClientFrameRate, cfg.ClientFrameBurst), 1) {
		c.srv.limitRefused(LimitClientFrameRate)
		return fmt.Errorf("%w: more than %v frames a second from the client", errOverLimit, cfg.ClientFrameRate)
	}
	n := c.in.read - l.charged
	l.charged = c.in.read
	if cfg.ClientByteRate > 0 && !l.bytes.take(now, cfg.ClientByteRate, burstOf(cfg.ClientByteRate, cfg.ClientByteBurst), float64(n)) {
		c.srv.limitRefused(LimitClientByteRate)
		return fmt.Errorf("%w: more than %v bytes a second from the client", errOverLimit, cfg.ClientByteRate)
	}
	return nil
}

// takeRequest charges a request to the connection's request bucket, and
// reports whether it is within RequestRate (a refused one is counted).
// On the reader goroutine.
func (c *Conn) takeRequest() bool {
	cfg := &c.srv.cfg
	if cfg.RequestRate <= 0 || c.limits.requests.take(c.lastRead.Sub(c.srv.epoch), cfg.RequestRate, burstOf(cfg.RequestRate, cfg.RequestBurst), 1) {
		return true
	}
	c.srv.limitRefused(LimitRequestRate)
	return false
}

// reserveFrame makes sure the frame being read holds budget under
// Config.MaxPendingFrameBytes for the memory its bytes so far may take:
// twice what has arrived (the buffer doubles as it fills), at most the
// frame size limit, past the first readBufSize (the pooled buffer's). It
// returns an error wrapping errOverLimit when the node has no more.
func (in *input) reserveFrame() error {
	s := in.c.srv
	budget, held := int64(s.cfg.MaxPendingFrameBytes), in.read-in.start
	if budget == 0 || held < readBufSize {
		return nil
	}
	need := min(2*held, int64(s.cfg.MaxFrameSize)) - in.reserved
	if need <= 0 {
		return nil
	}
	if s.limits.pending.Add(need) > budget {
		s.limits.pending.Add(-need)
		s.limitRefused(LimitPendingFrameBytes)
		return fmt.Errorf("%w: the node's memory for partly received frames (%d bytes) is taken", errOverLimit, budget)
	}
	in.reserved += need
	s.metrics.pendingFrameBytes.Add(need)
	return nil
}

// releaseFrame gives back what the frame read last reserved.
func (in *input) releaseFrame() {
	if in.reserved > 0 {
		in.c.srv.limits.pending.Add(-in.reserved)
		in.c.srv.metrics.pendingFrameBytes.Add(-in.reserved)
		in.reserved = 0
	}
}

// tooManyGroups refuses a token naming more groups than Config.MaxGroups
// allows; nil if it does not.
func (s *Server) tooManyGroups(groups []string) error {
	if max := s.cfg.maxGroups(); len(groups) > max {
		s.limitRefused(LimitGroups)
		return fmt.Errorf("the token names %d groups; this node allows at most %d", len(groups), max)
	}
	return nil
}
