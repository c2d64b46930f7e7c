package push

import "time"

// TimeFormat is how every time in a push header is written
// (Push-Expires, Push-Sent-At, Push-Dead-At): RFC 3339 with nanoseconds.
// Parsing accepts any RFC 3339 time, with or without fractions.
const TimeFormat = time.RFC3339Nano

// FormatTime writes t in UTC with [TimeFormat].
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// ParseTime reads a time written with [TimeFormat].
func ParseTime(s string) (time.Time, error) { return time.Parse(TimeFormat, s) }
