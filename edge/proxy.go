package edge

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"

	"github.com/pires/go-proxyproto"
)

// The PROXY protocol (version 2, HAProxy's send-proxy-v2) lets a load
// balancer that ends the client's TCP connection say whose it was: it
// sends a binary header first, before the client's bytes. The edge reads
// it from the sources it trusts (Config.ProxyProtocol), exactly, so the
// socket stays a plain TCP socket the reader can wait on without a
// buffer, and parses it with go-proxyproto. A connection from anywhere
// else is read as the client's own: a header from it is a bad handshake.

// proxyV2Signature starts every version 2 header; the 2 bytes after the
// version and command byte and the family byte are the length of the rest.
const proxyV2Signature = "\r\n\r\n\x00\r\nQUIT\n"

// proxyHeaderLen is the fixed part of a version 2 header.
const proxyHeaderLen = 16

// errNoProxyHeader: a trusted source's connection did not start with a
// version 2 header.
var errNoProxyHeader = errors.New("proxy protocol: no PROXY v2 header from a trusted source")

// proxySources are the networks whose connections start with a PROXY
// header. Read-only.
type proxySources []netip.Prefix

// newProxySources parses CIDRs ("10.0.0.0/8") or single addresses.
func newProxySources(list []string) (proxySources, error) {
	var out proxySources
	for _, s := range list {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not an address or a network (10.0.0.0/8)", s)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or a network (10.0.0.0/8)", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// trusts says whether a connection from addr starts with a PROXY header.
func (ps proxySources) trusts(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || len(ps) == 0 {
		return false
	}
	a, ok := netip.AddrFromSlice(tcp.IP)
	if !ok {
		return false
	}
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// readProxyHeader reads one version 2 header from r, exactly, and returns
// the client's address it names; for a LOCAL header (the balancer's own
// health check), or one naming no TCP client (UNSPEC, a datagram or Unix
// socket address, which no client connection here comes from), it
// returns peer: the address the connect rate per address then counts is
// always an IP address. max bounds the header's size.
func readProxyHeader(r io.Reader, peer net.Addr, max int) (net.Addr, error) {
	fixed := make([]byte, proxyHeaderLen, 64)
	if _, err := io.ReadFull(r, fixed); err != nil {
		return nil, fmt.Errorf("proxy protocol: %w", err)
	}
	if string(fixed[:len(proxyV2Signature)]) != proxyV2Signature {
		return nil, errNoProxyHeader
	}
	n := int(fixed[14])<<8 | int(fixed[15])
	if proxyHeaderLen+n > max {
		return nil, fmt.Errorf("proxy protocol: a header of %d bytes is over the limit of %d", proxyHeaderLen+n, max)
	}
	all := append(fixed, make([]byte, n)...)
	if _, err := io.ReadFull(r, all[proxyHeaderLen:]); err != nil {
		return nil, fmt.Errorf("proxy protocol: %w", err)
	}
	h, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(all)))
	if err != nil {
		return nil, fmt.Errorf("proxy protocol: %w", err)
	}
	src, ok := h.SourceAddr.(*net.TCPAddr)
	if h.Command.IsLocal() || !ok {
		return peer, nil
	}
	return src, nil
}
