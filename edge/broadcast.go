package edge

// broadcast wakes every goroutine waiting for a change in state its owner
// guards with a mutex: a waiter takes the channel (made on first need),
// lets go of the mutex and waits for it to close; wakeLocked closes it, and
// the next waiter gets a new one. The zero value is ready.
type broadcast struct {
	ch chan struct{} // nil while no one waits; closed only by wakeLocked
}

// waitLocked returns the channel the next wakeLocked closes.
func (b *broadcast) waitLocked() <-chan struct{} {
	if b.ch == nil {
		b.ch = make(chan struct{})
	}
	return b.ch
}

// wakeLocked wakes every waiter, if any.
func (b *broadcast) wakeLocked() {
	if b.ch != nil {
		close(b.ch)
		b.ch = nil
	}
}
