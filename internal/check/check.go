// Package check holds the range checks the components' Validate methods
// share, so that every configuration says "must be positive" and "must
// not be negative" the same way. It imports only the standard library.
package check

import "fmt"

// Number is what the checks take: counts, sizes and time.Duration.
type Number interface{ ~int | ~int64 }

// Positive returns errs with an error naming what appended when v is not
// above zero.
func Positive[T Number](errs []error, what string, v T) []error {
	if v <= 0 {
		return append(errs, fmt.Errorf("%s must be positive, got %v", what, v))
	}
	return errs
}

// NotNegative returns errs with an error naming what appended when v is
// below zero.
func NotNegative[T Number](errs []error, what string, v T) []error {
	if v < 0 {
		return append(errs, fmt.Errorf("%s must not be negative, got %v", what, v))
	}
	return errs
}
