// Package check holds the checks the components' Validate methods share,
// so that every configuration says "must be positive" and "must not be
// negative" the same way, and names the field that is wrong: by its Go
// name, which a program that sets fields from flags renames to the flag
// (Rename). It imports only the standard library.
package check

import (
	"errors"
	"fmt"
)

// FieldError is a configuration field that is wrong: what Validate
// reports for each.
type FieldError struct {
	Field   string // its Go name: QueueLen; a dotted path once In placed it: Edge.QueueLen
	With    string // a second field the problem is about, if any
	Problem string // "must be positive, got 0"
}

func (e *FieldError) Error() string {
	if e.With != "" {
		return e.Field + " and " + e.With + " " + e.Problem
	}
	return e.Field + " " + e.Problem
}

// Number is what the range checks take: counts, sizes, time.Duration and
// rates (rate.Limit).
type Number interface{ ~int | ~int64 | ~float64 }

// Field returns errs with a FieldError for field appended, its problem
// formatted from format and args.
func Field(errs []error, field, format string, args ...any) []error {
	return append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

// Positive returns errs with a FieldError for field appended when v is
// not above zero.
func Positive[T Number](errs []error, field string, v T) []error {
	if v <= 0 {
		return Field(errs, field, "must be positive, got %v", v)
	}
	return errs
}

// NotNegative returns errs with a FieldError for field appended when v is
// below zero.
func NotNegative[T Number](errs []error, field string, v T) []error {
	if v < 0 {
		return Field(errs, field, "must not be negative, got %v", v)
	}
	return errs
}

// Together returns errs with a FieldError appended when one of fields a
// and b is set (aSet, bSet) without the other.
func Together(errs []error, a string, aSet bool, b string, bSet bool) []error {
	if aSet != bSet {
		return append(errs, &FieldError{Field: a, With: b, Problem: "go together: give both or neither"})
	}
	return errs
}

// Rename returns err with the fields of its FieldErrors (err itself, or
// the errors it joins) renamed by name; other errors are kept as they are.
func Rename(err error, name func(field string) string) error {
	switch e := err.(type) {
	case nil:
		return nil
	case *FieldError:
		r := *e
		r.Field = name(e.Field)
		if r.With != "" {
			r.With = name(e.With)
		}
		return &r
	case interface{ Unwrap() []error }:
		var errs []error
		for _, x := range e.Unwrap() {
			errs = append(errs, Rename(x, name))
		}
		return errors.Join(errs...)
	}
	return err
}

// In returns err with each field of its FieldErrors placed in section,
// the field of an enclosing configuration that holds theirs: QueueLen in
// Edge is Edge.QueueLen.
func In(section string, err error) error {
	return Rename(err, func(field string) string { return section + "." + field })
}
