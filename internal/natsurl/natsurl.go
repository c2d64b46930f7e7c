// Package natsurl shows NATS server URLs without the credentials they may
// carry (nats://user:password@host, nats://token@host), so that a URL can
// go into a log line, an error or help text. It is the one place that
// knows how; every command and the bus use it. It imports only the
// standard library.
package natsurl

import (
	"fmt"
	"net/url"
	"strings"
)

// Redacted stands in for a URL's credentials.
const Redacted = "[REDACTED]"

// Redact returns urls, a comma-separated list as nats.Connect takes it,
// with the user information of each URL (user:password, or a token)
// replaced by [REDACTED]. It never fails: text it cannot parse is redacted
// from the scheme to the last @ of each entry, so nothing that may be a
// secret survives; text without an @ is returned unchanged.
func Redact(urls string) string {
	if !strings.Contains(urls, "@") {
		return urls
	}
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		parts[i] = redactOne(u)
	}
	return strings.Join(parts, ",")
}

func redactOne(u string) string {
	at := strings.LastIndex(u, "@")
	if at < 0 {
		return u
	}
	start := 0
	if i := strings.Index(u, "://"); i >= 0 && i < at {
		start = i + len("://")
	}
	return u[:start] + Redacted + u[at:]
}

// Check reports whether each of urls parses the way nats.Connect parses
// it (a missing scheme is nats://). Its error names the URL redacted and,
// for a URL carrying credentials, leaves out the parser's words, which
// may quote part of them.
func Check(urls string) error {
	for _, u := range strings.Split(urls, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		full := u
		if !strings.Contains(full, "://") {
			full = "nats://" + full
		}
		_, err := url.Parse(full)
		switch {
		case err == nil:
		case strings.Contains(u, "@"):
			return fmt.Errorf("nats url %s is not a valid URL (details left out: it carries credentials)", Redact(u))
		default:
			return fmt.Errorf("nats url: %w", err)
		}
	}
	return nil
}
