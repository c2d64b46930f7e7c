package check

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// haproxyDir holds the balancer's two configs: haproxy.cfg for edges
// without TLS, haproxy-tls.cfg for edges with --tls-cert.
var haproxyDir = filepath.Join(root, "deployments/haproxy")

// haproxyLine is one directive of an HAProxy config, its words separated
// by single spaces, under its section (`frontend websocket`…).
type haproxyLine struct {
	section, text string
	n             int // its line number in the file
}

// readHAProxy is the directives of the config at path, comments and
// blank lines left out.
func readHAProxy(t *testing.T, path string) []haproxyLine {
	t.Helper()
	var lines []haproxyLine
	section := ""
	for i, raw := range strings.Split(string(mustRead(t, path)), "\n") {
		text := strings.Join(strings.Fields(raw), " ")
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if raw[0] != ' ' && raw[0] != '\t' {
			section = text
		}
		lines = append(lines, haproxyLine{section: section, text: text, n: i + 1})
	}
	return lines
}

// haproxy-tls.cfg is haproxy.cfg with TLS and nothing else: the same
// sections holding the same directives in the same order, timeouts,
// checks, balance and logs alike. Only these may differ: a bind line
// (its port, and `ssl crt` after it), and a server or default-server line,
// which may only add words at its end (`ssl`, `check-ssl`, `verify …`).
func TestHAProxyTLSMatchesPlain(t *testing.T) {
	plain := readHAProxy(t, filepath.Join(haproxyDir, "haproxy.cfg"))
	tls := readHAProxy(t, filepath.Join(haproxyDir, "haproxy-tls.cfg"))
	if len(plain) != len(tls) {
		t.Fatalf("haproxy.cfg has %d directives, haproxy-tls.cfg %d; want the same ones", len(plain), len(tls))
	}
	for i, p := range plain {
		if err := tlsVariant(p, tls[i]); err != nil {
			t.Errorf("haproxy.cfg:%d %q, haproxy-tls.cfg:%d %q: %v", p.n, p.text, tls[i].n, tls[i].text, err)
		}
	}
}

// bindAddr is a bind line's address before its port.
var bindAddr = regexp.MustCompile(`^bind ("\$\{LB_BIND[^}]*\}):\d+"`)

// tlsVariant says whether tls is p, or what TLS may make of it.
func tlsVariant(p, tls haproxyLine) error {
	if p.section != tls.section {
		return fmt.Errorf("under %q and %q; want the same section", p.section, tls.section)
	}
	if p.text == tls.text {
		return nil
	}
	switch strings.Fields(p.text)[0] {
	case "bind":
		pa, ta := bindAddr.FindStringSubmatch(p.text), bindAddr.FindStringSubmatch(tls.text)
		if pa == nil || ta == nil || pa[1] != ta[1] {
			return fmt.Errorf("want both bound to ${LB_BIND}")
		}
		return nil
	case "server", "default-server":
		if !strings.HasPrefix(tls.text, p.text+" ") {
			return fmt.Errorf("want haproxy.cfg's words first, TLS's after them")
		}
		return nil
	}
	return fmt.Errorf("differ, where only bind and server lines may")
}

// Neither config logs a client's token: the WebSocket frontend's
// log-format names the request's path (%HPO), never its whole URI or
// query (%r, %HU, %HQ, httplog's default), where ?token= is.
func TestHAProxyLogsNoQuery(t *testing.T) {
	for _, name := range []string{"haproxy.cfg", "haproxy-tls.cfg"} {
		formats := 0
		for _, l := range readHAProxy(t, filepath.Join(haproxyDir, name)) {
			if l.text == "option httplog" || strings.HasPrefix(l.text, "option httplog ") || l.text == "option httpslog" {
				t.Errorf("%s:%d %q: httplog logs the whole request line, the client's token with it", name, l.n, l.text)
			}
			if !strings.HasPrefix(l.text, "log-format ") {
				continue
			}
			formats++
			if m := regexp.MustCompile(`%(\{[^}]*\})?(r|HU|HQ)\b`).FindString(l.text); m != "" {
				t.Errorf("%s:%d logs %s, which holds the query and so the token", name, l.n, m)
			}
			if !strings.Contains(l.text, "%HPO") {
				t.Errorf("%s:%d %q: want the request's path, %%HPO", name, l.n, l.text)
			}
		}
		if formats == 0 {
			t.Errorf("%s has no log-format: the WebSocket frontend's must leave out the query", name)
		}
	}
}
