// Package configfile decodes the YAML files users write (component
// configurations, static exports) into Go structs, strictly, with errors in
// the user's terms.
//
//   - Fields are matched by their `json` tag name; embedded structs tagged
//     `json:",inline"` are flattened. A key that matches no field is an
//     error that names it and suggests the closest known one.
//   - Every error names the YAML path of the field (`limits.headerTimeout`,
//     `services[2] (demo/echo).ports[0].port`), its line, and what is
//     wanted; no Go type or struct names and no JSON appear in them.
//   - metav1.Duration fields take Go durations with a unit ("10s"); a bare
//     number is rejected with a hint.
//   - A `want:"…"` struct tag replaces the default description of what a
//     scalar field takes (for example `want:"a port number 1-65535"`).
package configfile
