package producer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// markKey signs the producer's marks (see Producer.mark). Whoever may
// subscribe to the status inbox sees them (on an open NATS server,
// anyone; under the shipped permissions, the other producers, which may
// publish marks too): a mark names the last push it covers and a MAC of
// that number, so that none but the producer can make one that forgets
// pushes whose "no responders" has not come yet. A mark seen and sent
// again comes after the real one and forgets nothing more.
type markKey [32]byte

func newMarkKey() markKey {
	var k markKey
	_, _ = rand.Read(k[:]) // crypto/rand.Read never fails (Go 1.24+)
	return k
}

// markMACLen is the bytes of the MAC a mark carries.
const markMACLen = 16

func (k *markKey) mac(seq uint64) []byte {
	h := hmac.New(sha256.New, k[:])
	h.Write(binary.BigEndian.AppendUint64(nil, seq))
	return h.Sum(nil)[:markMACLen]
}

// mark is the mark of the pushes up to seq: seq in base 36, a space and
// its MAC in base64url.
func (k *markKey) mark(seq uint64) []byte {
	b := strconv.AppendUint(nil, seq, 36)
	b = append(b, ' ')
	return base64.RawURLEncoding.AppendEncode(b, k.mac(seq))
}

// parse returns the number a mark made with k names, or false for one
// that is not k's.
func (k *markKey) parse(data []byte) (uint64, bool) {
	num, sig, ok := strings.Cut(string(data), " ")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(num, 36, 64)
	if err != nil {
		return 0, false
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	return seq, err == nil && hmac.Equal(mac, k.mac(seq))
}

// natsSubjectHeader is the header in which NATS's "no responders" names the
// subject published to (nats-server 2.12 and later).
const natsSubjectHeader = "Nats-Subject"

// answersPush reports whether the "no responders" with headers h can be
// NATS's own answer to a push published to subject, from a server of the
// given version: a server that names the subject (2.12 and later) must
// name that one. From an older server, which names none, any is taken: an
// answer forged by another client of the status inbox cannot be told
// from NATS's then.
func answersPush(h nats.Header, subject, serverVersion string) bool {
	if v := h[natsSubjectHeader]; len(v) > 0 {
		return len(v) == 1 && v[0] == subject
	}
	return !namesSubject(serverVersion)
}

// namesSubject reports whether a nats-server of version v names the
// subject in its "no responders"; a version it cannot read is taken as
// one that does not, so that no genuine answer is refused for it.
func namesSubject(v string) bool {
	major, rest, _ := strings.Cut(v, ".")
	minor, _, _ := strings.Cut(rest, ".")
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(minor)
	return err1 == nil && err2 == nil && (ma > 2 || ma == 2 && mi >= 12)
}
