package wire

import "fmt"

// A receipt frame's payload lists push ids, each a length byte and then
// 1 to MaxFieldLen bytes, one after another; a frame lists at least one.

// AppendReceipt appends to dst the payload of a receipt frame confirming
// ids. It fails, returning dst unchanged, when there is no id or an id is
// empty or longer than MaxFieldLen bytes.
func AppendReceipt(dst []byte, ids ...string) ([]byte, error) {
	if len(ids) == 0 {
		return dst, fmt.Errorf("%w: a receipt without push ids", ErrMalformed)
	}
	for _, id := range ids {
		if err := checkReceiptID(len(id)); err != nil {
			return dst, err
		}
	}
	for _, id := range ids {
		dst = append(append(dst, byte(len(id))), id...)
	}
	return dst, nil
}

// ReceiptIDs reads the push ids of a receipt frame's payload, in order
// (a repeat is kept). Any payload that is not one or more well-formed ids
// gives an error wrapping [ErrMalformed].
func ReceiptIDs(payload []byte) ([]string, error) {
	var ids []string
	err := EachReceiptID(payload, func(id []byte) { ids = append(ids, string(id)) })
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// EachReceiptID calls fn with each push id of a receipt frame's payload,
// in order, as a slice of payload (fn must not keep it): no id is copied.
// A malformed payload gives the error ReceiptIDs does, and fn is not
// called at all.
func EachReceiptID(payload []byte, fn func(id []byte)) error {
	if err := walkReceipt(payload, nil); err != nil {
		return err
	}
	return walkReceipt(payload, fn)
}

// walkReceipt checks payload, id by id, calling fn (if not nil) with each.
func walkReceipt(payload []byte, fn func(id []byte)) error {
	if len(payload) == 0 {
		return fmt.Errorf("%w: a receipt without push ids", ErrMalformed)
	}
	for i, rest := 1, payload; len(rest) > 0; i++ {
		n := int(rest[0])
		if len(rest) < 1+n {
			return fmt.Errorf("%w: receipt id %d runs past the end", ErrMalformed, i)
		}
		if err := checkReceiptID(n); err != nil {
			return err
		}
		if fn != nil {
			fn(rest[1 : 1+n])
		}
		rest = rest[1+n:]
	}
	return nil
}

func checkReceiptID(n int) error {
	switch {
	case n == 0:
		return fmt.Errorf("%w: an empty push id in a receipt", ErrMalformed)
	case n > MaxFieldLen:
		return fmt.Errorf("%w: a receipt's push id longer than %d bytes", ErrMalformed, MaxFieldLen)
	}
	return nil
}
