// Package component owns the configuration files of Causeway's long-running
// processes (federator, gateway, DNS shim) and wires each into a process:
// identity bootstrap, listeners, admin endpoints and graceful shutdown.
//
// `causeway federator|gateway|dnsshim --config FILE` call Load*Config and
// Run*; `causeway dev` runs the same packages in one process instead.
// docs/components.md describes every field.
package component
