// Package admin serves a component's operator endpoints: /metrics
// (Prometheus, from the component's own registry), /healthz (the process
// is alive) and /readyz (every readiness check passes).
package admin
