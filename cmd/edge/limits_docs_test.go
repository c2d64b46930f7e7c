package main

import (
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The Limits table of docs/operations.md has a row for every limit flag,
// and states each one's default as the flags give it.
func TestLimitsTableMatchesTheFlags(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := limitsTable(t, string(doc))
	o, _, ok := parse(nil, io.Discard, io.Discard)
	if !ok {
		t.Fatal("parse refused no flags")
	}
	limits := reflect.TypeFor[limitFlags]()
	var f edgeFlags
	for _, cf := range f.configFlags() {
		if _, isLimit := limits.FieldByName(cf.name); !isLimit && cf.flag != "--max-frame-size" {
			continue
		}
		stated, ok := rows[cf.flag]
		if !ok {
			t.Errorf("%s: no row in the Limits table", cf.flag)
			continue
		}
		v := field(&o.cfg, cf.path)
		got := v.Convert(reflect.TypeFor[float64]()).Float()
		if want := docNumber(t, stated); got != want {
			t.Errorf("%s: the Limits table says %q (%v); the flag's default is %v", cf.flag, stated, want, got)
		}
	}
}

// limitsTable maps each flag of the Limits table to the default its row
// states: a row naming two flags states two defaults, in order.
func limitsTable(t *testing.T, doc string) map[string]string {
	t.Helper()
	_, table, ok := strings.Cut(doc, "\n## Limits\n")
	if !ok {
		t.Fatal("docs/operations.md has no Limits section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	rows := map[string]string{}
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(line, " | ")
		if len(cells) < 3 || !strings.HasPrefix(cells[0], "| `--") {
			continue
		}
		flags := strings.Split(strings.TrimPrefix(cells[0], "| "), ", ")
		defaults := strings.Split(cells[1], ", ")
		if len(flags) != len(defaults) {
			t.Fatalf("Limits row %q: %d flags, %d defaults", cells[0], len(flags), len(defaults))
		}
		for i, fl := range flags {
			rows[strings.Trim(fl, "`")] = defaults[i]
		}
	}
	return rows
}

// docNumber is the value of a default as the docs write it: 100,000,
// 2,000/s, 0 (off), 1 MiB/s, 256 MiB.
func docNumber(t *testing.T, s string) float64 {
	t.Helper()
	s = strings.TrimSuffix(strings.TrimSuffix(s, " (off)"), "/s")
	unit := 1.0
	for suffix, u := range map[string]float64{" KiB": 1 << 10, " MiB": 1 << 20, " GiB": 1 << 30} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			s, unit = n, u
		}
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
	if err != nil {
		t.Fatalf("default %q: %v", s, err)
	}
	return v * unit
}
