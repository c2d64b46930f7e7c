package dlq

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// lostLog logs lost dead letters in batches: one line ("dead letters lost")
// per lostBatch pushes or lostFlush, whichever comes first, each push as
// "<push id> <subject>", followed by " (<error>)" when a write failed. Every
// lost push is in the log, and a flood of them makes a few long lines
// rather than a line each that the log's sampling would thin out.
type lostLog struct {
	mu     sync.Mutex
	log    *zap.Logger
	why    string      // guarded by mu: why the batch's pushes were lost
	pushes []string    // guarded by mu
	timer  *time.Timer // guarded by mu: flushes the batch
}

const (
	lostBatch = 5000
	lostFlush = 100 * time.Millisecond
)

func (l *lostLog) add(why, push string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pushes) > 0 && why != l.why {
		l.flushLocked()
	}
	l.why = why
	l.pushes = append(l.pushes, push)
	switch {
	case len(l.pushes) >= lostBatch:
		l.flushLocked()
	case l.timer == nil:
		l.timer = time.AfterFunc(lostFlush, l.flush)
	}
}

func (l *lostLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
}

func (l *lostLog) flushLocked() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if len(l.pushes) == 0 {
		return
	}
	l.log.Error("dead letters lost", zap.String("why", l.why), zap.Int("count", len(l.pushes)), zap.Strings("pushes", l.pushes))
	l.pushes = nil
}
