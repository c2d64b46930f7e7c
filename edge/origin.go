package edge

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// errOriginRefused: a browser page from an origin that may not connect.
var errOriginRefused = errors.New("origin not allowed")

// originPolicy decides which browser pages may open WebSocket connections
// (Config.WSAllowedOrigins). Read-only once made.
type originPolicy struct {
	any     bool                // "*": every origin
	allowed map[string]struct{} // canonical origins, "null" included if listed
}

// CheckOrigin returns nil if o may be listed in Config.WSAllowedOrigins
// (an origin scheme://host[:port] with scheme http or https, null, or *),
// else an error saying what is wanted.
func CheckOrigin(o string) error {
	_, err := newOriginPolicy([]string{o})
	return err
}

func newOriginPolicy(list []string) (originPolicy, error) {
	var p originPolicy
	for _, o := range list {
		if o == "*" {
			p.any = true
			continue
		}
		c, ok := canonicalOrigin(o)
		if !ok {
			return originPolicy{}, fmt.Errorf("%q is not an origin: want scheme://host[:port] with scheme http or https, null, or *", o)
		}
		if p.allowed == nil {
			p.allowed = make(map[string]struct{})
		}
		p.allowed[c] = struct{}{}
	}
	return p, nil
}

// allows reports whether a request carrying Origin origin for Host host
// may be upgraded: its own origin, a listed one, or any with "*".
func (p *originPolicy) allows(origin, host string) bool {
	if p.any {
		return true
	}
	c, ok := canonicalOrigin(origin)
	if !ok {
		return false
	}
	if _, listed := p.allowed[c]; listed {
		return true
	}
	scheme, originHost, _ := strings.Cut(c, "://")
	return originHost != "" && originHost == canonicalHost(scheme, host)
}

// canonicalOrigin is an origin in lower case without the scheme's default
// port, "null" as it is; false if o is neither.
func canonicalOrigin(o string) (string, bool) {
	if o == "null" {
		return o, true
	}
	u, err := url.Parse(o)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" ||
		u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", false
	}
	return u.Scheme + "://" + canonicalHost(u.Scheme, u.Host), true
}

// canonicalHost is host:port in lower case, without the scheme's default
// port.
func canonicalHost(scheme, host string) string {
	host = strings.ToLower(host)
	switch {
	case scheme == "http":
		return strings.TrimSuffix(host, ":80")
	case scheme == "https":
		return strings.TrimSuffix(host, ":443")
	}
	return host
}

// loopbackHost reports whether host, a Host header (host[:port]), names
// this machine whatever DNS says: a loopback address, localhost, or a name
// under .localhost (RFC 6761: never delegated, and browsers resolve it to
// loopback themselves). A DNS-rebinding page sends its own name instead.
func loopbackHost(host string) bool {
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	} else if h, ok := strings.CutPrefix(host, "["); ok {
		name, _ = strings.CutSuffix(h, "]")
	}
	name = strings.ToLower(name)
	if ip := net.ParseIP(name); ip != nil {
		return ip.IsLoopback()
	}
	return name == "localhost" || len(name) > len(".localhost") && strings.HasSuffix(name, ".localhost")
}
