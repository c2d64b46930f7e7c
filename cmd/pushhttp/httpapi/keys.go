package httpapi

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pushfabric/pushfabric/push"
)

// KeyPrefix starts every API key NewKey makes, so that people and secret
// scanners can tell one when they see it.
const KeyPrefix = "pfk_"

// keyBytes is how much randomness a key holds: SHA-256 of it is then as
// hard to reverse as the key is to guess, so no slow hash is needed.
const keyBytes = 32

// NewKey returns a new API key: KeyPrefix and 32 bytes from crypto/rand,
// base64url without padding (47 characters in all).
func NewKey() string {
	b := make([]byte, keyBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// HashKey is what a keys file keeps of key: its SHA-256.
func HashKey(key string) [sha256.Size]byte { return sha256.Sum256([]byte(key)) }

// KeyEntry is one line of a keys file: a name, the SHA-256 of the key,
// and what the key may push to.
type KeyEntry struct {
	Name    string
	Hash    [sha256.Size]byte
	Targets []Target // nil when the line names none: DefaultTargets
}

// Line is the entry as a keys file holds it: name, hash in hex, targets,
// separated by a space.
func (e KeyEntry) Line() string {
	var b strings.Builder
	b.WriteString(e.Name + " " + hex.EncodeToString(e.Hash[:]))
	for _, t := range e.Targets {
		b.WriteString(" " + t.String())
	}
	return b.String()
}

// ParseKeys reads the content of a keys file: one key a line,
//
//	name sha256-hex [target ...]
//
// with blank lines and lines starting with # ignored. A name follows the
// rule of session ids (1-128 of A-Z a-z 0-9 _ -) and is unique in the
// file; a target is session:PATTERN, group:PATTERN or all (ParseTarget),
// and none means DefaultTargets (Targets nil). An error names the line.
func ParseKeys(b []byte) ([]KeyEntry, error) {
	var out []KeyEntry
	names := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		e, err := parseKeyLine(line)
		if err == nil && names[e.Name] {
			err = fmt.Errorf("key name %q: twice in the file", e.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		names[e.Name] = true
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func parseKeyLine(line string) (KeyEntry, error) {
	f := strings.Fields(line)
	var e KeyEntry
	if len(f) < 2 {
		return e, errors.New("want: name sha256-hex [target ...]")
	}
	if err := push.CheckName("key name", f[0]); err != nil {
		return e, err
	}
	h, err := hex.DecodeString(f[1])
	if err != nil || len(h) != sha256.Size {
		return e, fmt.Errorf("key %s: the hash is not %d hex digits", f[0], 2*sha256.Size)
	}
	targets, err := ParseTargets(f[2:])
	if err != nil {
		return e, fmt.Errorf("key %s: %w", f[0], err)
	}
	e.Name, e.Targets = f[0], targets
	copy(e.Hash[:], h)
	return e, nil
}

// AppendKey adds e to the keys file at path, creating it (mode 0600)
// if it is not there; a name already in the file is refused. A running
// pushhttp takes the key from its next request on (KeyFile).
func AppendKey(path string, e KeyEntry) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	entries, err := ParseKeys(old)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, o := range entries {
		if o.Name == e.Name {
			return fmt.Errorf("%s: a key named %s is there already (pushhttp key rm --name %s first)", path, e.Name, e.Name)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	line := e.Line() + "\n"
	if len(old) > 0 && old[len(old)-1] != '\n' {
		line = "\n" + line
	}
	_, err = f.WriteString(line) // one write: a reader sees the line whole or not at all
	return errors.Join(err, f.Close())
}

// RemoveKey takes the key named name out of the keys file at path,
// keeping every other line as it was; the file is replaced at once
// (renamed over), so a reader never sees half of it.
func RemoveKey(path, name string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var kept bytes.Buffer
	found := false
	for line := range strings.Lines(string(old)) {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name { // a comment never starts with a name
			found = true
			continue
		}
		kept.WriteString(line)
	}
	if !found {
		return fmt.Errorf("%s: no key named %s", path, name)
	}
	if _, err := ParseKeys(kept.Bytes()); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keys-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(kept.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// KeyFile holds the keys of a keys file and reads it again when it
// changes (its modification time or size, looked at with a stat on every
// lookup, so a key added or removed counts from the next request on),
// and on Reload (SIGHUP). A changed file that does not parse leaves the
// keys in use, and OnError is told once per change. Safe for concurrent
// use.
type KeyFile struct {
	path    string
	onError func(error) // may be nil

	mu      sync.Mutex
	entries []KeyEntry // guarded by mu: the keys in use
	stamp   fileStamp  // guarded by mu: the file as last read, whether it parsed or not
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// OpenKeyFile reads the keys file at path; onError, if not nil, is told
// why a changed file was not taken (the keys in use stay). A file that
// is not there or does not parse is an error.
func OpenKeyFile(path string, onError func(error)) (*KeyFile, error) {
	f := &KeyFile{path: path, onError: onError}
	if _, err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads the file again now, whether or not it changed, and
// reports how many keys are in use; on an error the keys in use stay.
func (f *KeyFile) Reload() (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := os.Stat(f.path)
	if err != nil {
		return len(f.entries), fmt.Errorf("keys file: %w", err)
	}
	err = f.loadLocked(st)
	return len(f.entries), err
}

// loadLocked reads the file, which st describes. One that group or
// others may write is refused: whoever can write it can add a key.
func (f *KeyFile) loadLocked(st fs.FileInfo) error {
	f.stamp = fileStamp{st.ModTime(), st.Size()}
	if mode := st.Mode().Perm(); mode&0o022 != 0 {
		return fmt.Errorf("keys file %s is writable by group or others (%v): whoever can write it can add a key (chmod go-w %s)",
			f.path, mode, f.path)
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("keys file: %w", err)
	}
	entries, err := ParseKeys(b)
	if err != nil {
		return fmt.Errorf("keys file %s: %w", f.path, err)
	}
	f.entries = entries
	return nil
}

// refreshLocked reads the file again if it changed since it was last
// read. A file gone keeps the keys in use (told to OnError once).
func (f *KeyFile) refreshLocked() {
	st, err := os.Stat(f.path)
	switch {
	case err != nil && f.stamp != (fileStamp{}):
		f.stamp = fileStamp{}
		err = fmt.Errorf("keys file: %w", err)
	case err != nil:
		return
	case (fileStamp{st.ModTime(), st.Size()}) == f.stamp:
		return
	default:
		err = f.loadLocked(st)
	}
	if err != nil && f.onError != nil {
		f.onError(err)
	}
}

// lookup finds the entry whose hash is key's. Every entry is compared, in
// constant time, whatever matches, so the time taken says nothing of
// which hash came close.
func (f *KeyFile) lookup(key string) (KeyEntry, bool) {
	f.mu.Lock()
	f.refreshLocked()
	entries := f.entries
	f.mu.Unlock()
	h := HashKey(key)
	found := -1
	for i := range entries {
		if subtle.ConstantTimeCompare(h[:], entries[i].Hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return KeyEntry{}, false
	}
	return entries[found], true
}
