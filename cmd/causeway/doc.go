// Command causeway is the single Causeway binary: it wires flags to the
// packages' configurations and runs them; it holds no logic of its own.
package main
