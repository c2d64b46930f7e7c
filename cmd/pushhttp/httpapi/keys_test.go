package httpapi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNewKey(t *testing.T) {
	a, b := NewKey(), NewKey()
	if a == b || !strings.HasPrefix(a, KeyPrefix) || len(a) != len(KeyPrefix)+43 {
		t.Fatalf("NewKey: %q, %q; want two different keys of %d characters starting %s", a, b, len(KeyPrefix)+43, KeyPrefix)
	}
	// The file keeps SHA-256 of the key as sent, in hex (sha256sum's).
	line := (KeyEntry{Name: "k", Hash: HashKey("abc")}).Line()
	if want := "k ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; line != want {
		t.Fatalf("Line = %q; want %q", line, want)
	}
}

func TestParseKeys(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	for _, c := range []struct {
		file, err string
		keys      int
	}{
		{"", "", 0},
		{"# a comment\n\nbilling " + hash + "\n", "", 1},
		{"billing " + hash + " session:billing-* group:team-? all\nops " + strings.Repeat("cd", 32), "", 2},
		{"billing", "line 1: want: name sha256-hex", 0},
		{"bil.ling " + hash, `line 1: key name "bil.ling"`, 0},
		{"billing " + hash[:62], "line 1: key billing: the hash is not 64 hex digits", 0},
		{"billing " + strings.Repeat("zz", 32), "the hash is not 64 hex digits", 0},
		{"billing " + hash + " session:[", `line 1: key billing: target "session:[": not a pattern`, 0},
		{"billing " + hash + " sessions:*", `target "sessions:*": want session:PATTERN`, 0},
		{"billing " + hash + "\n\nbilling " + hash, `line 3: key name "billing": twice in the file`, 0},
	} {
		keys, err := ParseKeys([]byte(c.file))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("ParseKeys(%q): %v", c.file, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseKeys(%q): %v; want %q", c.file, err, c.err)
		case len(keys) != c.keys:
			t.Errorf("ParseKeys(%q): %d keys; want %d", c.file, len(keys), c.keys)
		}
	}
}

// A line written by Line reads back as the same entry.
func TestKeyLineRoundTrip(t *testing.T) {
	targets, err := ParseTargets([]string{"session:billing-*", "all"})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []KeyEntry{{Name: "billing", Hash: HashKey("k1")}, {Name: "ops", Hash: HashKey("k2"), Targets: targets}} {
		got, err := ParseKeys([]byte(e.Line()))
		if err != nil || len(got) != 1 || got[0].Name != e.Name || got[0].Hash != e.Hash || len(got[0].Targets) != len(e.Targets) {
			t.Fatalf("%q read back as %+v, %v", e.Line(), got, err)
		}
	}
}

// AppendKey makes the file (0600), refuses a name twice; RemoveKey takes
// one line out and keeps the others, comments included.
func TestAppendAndRemoveKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	for _, name := range []string{"billing", "ops"} {
		if err := AppendKey(path, KeyEntry{Name: name, Hash: HashKey(name)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := AppendKey(path, KeyEntry{Name: "ops", Hash: HashKey("other")}); err == nil || !strings.Contains(err.Error(), "a key named ops is there already") {
		t.Fatalf("AppendKey of ops again: %v", err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("keys file: %v, %v; want mode 0600", st.Mode(), err)
	}
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append([]byte("# who holds what\n"), b...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RemoveKey(path, "billing"); err != nil {
		t.Fatal(err)
	}
	if err := RemoveKey(path, "billing"); err == nil || !strings.Contains(err.Error(), "no key named billing") {
		t.Fatalf("RemoveKey of billing again: %v", err)
	}
	b, _ = os.ReadFile(path)
	if want := "# who holds what\n" + (KeyEntry{Name: "ops", Hash: HashKey("ops")}).Line() + "\n"; string(b) != want {
		t.Fatalf("after RemoveKey: %q; want %q", b, want)
	}
}

// A KeyFile takes a changed file at the next lookup, keeps the keys it
// has when the change does not parse (and says so once), and drops a
// removed key.
func TestKeyFileReloads(t *testing.T) {
	{
		path := filepath.Join(t.TempDir(), "keys")
		if err := AppendKey(path, KeyEntry{Name: "billing", Hash: HashKey("k1")}); err != nil {
			t.Fatal(err)
		}
		var errs []error
		f, err := OpenKeyFile(path, func(err error) { errs = append(errs, err) })
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := f.lookup("k1"); !ok {
			t.Fatal("k1 not found")
		}
		if _, ok := f.lookup("k2"); ok {
			t.Fatal("k2 found before it was added")
		}
		if err := AppendKey(path, KeyEntry{Name: "ops", Hash: HashKey("k2")}); err != nil {
			t.Fatal(err)
		}
		if e, ok := f.lookup("k2"); !ok || e.Name != "ops" {
			t.Fatalf("k2 after the file changed: %+v, %v", e, ok)
		}
		if err := os.WriteFile(path, []byte("broken line\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f.lookup("k1")
		if _, ok := f.lookup("k1"); !ok || len(errs) != 1 {
			t.Fatalf("after a broken change: k1 found %v, errors %v; want the old keys and one error", ok, errs)
		}
		if err := os.WriteFile(path, []byte((KeyEntry{Name: "ops", Hash: HashKey("k2")}).Line()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if n, err := f.Reload(); err != nil || n != 1 {
			t.Fatalf("Reload: %d, %v", n, err)
		}
		if _, ok := f.lookup("k1"); ok {
			t.Fatal("k1 still taken after it was removed")
		}
		if err := RemoveKey(path, "ops"); err != nil {
			t.Fatal(err)
		}
		if _, ok := f.lookup("k2"); ok {
			t.Fatal("k2 still taken after RemoveKey")
		}
	}
	if _, err := OpenKeyFile(filepath.Join(t.TempDir(), "none"), nil); err == nil {
		t.Fatal("OpenKeyFile of a missing file worked")
	}
}

// A keys file group or others may write is refused at open, and when it
// becomes so and is read again the keys in use stay.
func TestKeyFileWritableByOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	if err := AppendKey(path, KeyEntry{Name: "billing", Hash: HashKey("k1")}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o620); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenKeyFile(path, nil); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Fatalf("OpenKeyFile of a file group may write: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := OpenKeyFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Reload(); err == nil {
		t.Fatal("Reload of a file anyone may write: no error")
	}
	if _, ok := f.lookup("k1"); !ok {
		t.Fatal("the key in use was dropped")
	}
}
