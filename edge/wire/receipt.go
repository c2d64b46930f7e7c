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
	if len(payload) == 0 {
		return nil, fmt.Errorf("%w: a receipt without push ids", ErrMalformed)
	}
	var ids []string
	for rest := payload; len(rest) > 0; {
		id, next, ok := cutField(rest)
		if !ok {
			return nil, fmt.Errorf("%w: receipt id %d runs past the end", ErrMalformed, len(ids)+1)
		}
		if err := checkReceiptID(len(id)); err != nil {
			return nil, err
		}
		ids, rest = append(ids, id), next
	}
	return ids, nil
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
