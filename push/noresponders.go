package push

// NoResponders reports whether a NATS message with these headers and body
// is the server's "no responders" answer to a request: status 503 and no
// body. Nobody subscribed to the request's subject — for a push, no node
// holds the session. h is the message's header (a nats.Header converts).
func NoResponders(h map[string][]string, data []byte) bool {
	if len(data) != 0 {
		return false
	}
	v := h["Status"]
	return len(v) > 0 && v[0] == "503"
}
