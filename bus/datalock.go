package bus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// lockFileName is the file in the embedded server's data directory that
// the node holding the directory keeps locked.
const lockFileName = "pushfabric-edge.lock"

// ErrDataDirLocked is returned by [Conn.Start] when another process holds
// the embedded server's data directory: two servers on one JetStream
// store would corrupt it.
var ErrDataDirLocked = errors.New("the data directory is in use by another edge node")

// lockDataDir creates dir if it must and takes its lock, without waiting,
// before anything opens the store in it. The lock lasts until the
// returned file is closed (or the process ends). When another node holds
// it, the error points to that node's server, as the node wrote it in the
// lock file (see noteServer), or else to listen.
func lockDataDir(dir, listen string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded nats data directory: %w", err)
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded nats data directory: %w", err)
	}
	if err := lockFile(f); err != nil {
		_ = f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("embedded nats data directory %s: %w (it holds %s); "+
				"give this node its own --data-dir, or share the running node's server with --nats-url %s",
				dir, ErrDataDirLocked, lockFileName, holderURL(path, listen))
		}
		return nil, fmt.Errorf("lock embedded nats data directory %s: %w", dir, err)
	}
	return f, nil
}

// noteServer writes the embedded server's client URL into the lock file,
// for a node refused the directory to name.
func noteServer(f *os.File, url string) {
	if f.Truncate(0) == nil {
		_, _ = f.WriteAt([]byte(url+"\n"), 0)
	}
}

// holderURL is the server URL the lock file at path names, or listen's.
func holderURL(path, listen string) string {
	b, err := os.ReadFile(path)
	if url := strings.TrimSpace(string(b)); err == nil && strings.HasPrefix(url, "nats://") {
		return url
	}
	return "nats://" + listen
}

// errLocked is lockFile's answer when another process holds the lock.
var errLocked = errors.New("locked")
