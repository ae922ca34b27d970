package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"sigs.k8s.io/yaml"
)

// Format is an output format of -o.
type Format string

// Output formats.
const (
	FormatTable Format = "table"
	FormatJSON  Format = "json"
	FormatYAML  Format = "yaml"
)

// ParseFormat parses the value of -o.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatTable, FormatJSON, FormatYAML:
		return f, nil
	}
	return "", fmt.Errorf("-o %q: want table, json or yaml", s)
}

// Tabular is an answer that can render itself as a table (or text) for
// people; its JSON encoding is for programs.
type Tabular interface {
	WriteTable(w io.Writer) error
}

// Print writes v to w in format f.
func Print(w io.Writer, f Format, v Tabular) error {
	switch f {
	case FormatJSON:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("encode json: %w", err)
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case FormatYAML:
		b, err := yaml.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode yaml: %w", err)
		}
		_, err = w.Write(b)
		return err
	}
	return v.WriteTable(w)
}

// Listing is a Tabular list that says when it is empty.
type Listing interface {
	Tabular
	// EmptyMessage is what to tell a person instead of a bare table
	// header, like "No exports found."; "" when the list has items.
	EmptyMessage() string
}

// PrintListing is Print, except that an empty Listing in table format
// prints its EmptyMessage on errW (and no header), like kubectl's "No
// resources found". JSON and YAML are unchanged (an empty list is []).
func PrintListing(w, errW io.Writer, f Format, v Tabular) error {
	if l, ok := v.(Listing); ok && f == FormatTable {
		if msg := l.EmptyMessage(); msg != "" {
			_, err := fmt.Fprintln(errW, msg)
			return err
		}
	}
	return Print(w, f, v)
}

// Table writes rows aligned in columns: the one table writer of the CLI.
type Table struct{ tw *tabwriter.Writer }

// NewTable starts a table on w with its header row.
func NewTable(w io.Writer, header ...any) *Table {
	t := &Table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.Row(header...)
	return t
}

// Row writes one row.
func (t *Table) Row(cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, c)
	}
	fmt.Fprint(t.tw, "\n")
}

// Flush writes the aligned rows out.
func (t *Table) Flush() error { return t.tw.Flush() }
