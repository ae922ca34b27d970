package kuberoutes

import (
	"errors"
	"log/slog"

	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

// ControllerName is the controllerName of the status.parents entries the
// StatusWriter owns.
const ControllerName = "causeway.dev/gateway"

// FieldManager is the field manager of the StatusWriter's writes.
const FieldManager = "causeway"

// ErrNoClient is returned by NewSource when SourceConfig.Client is nil.
var ErrNoClient = errors.New("kuberoutes: no Gateway API client")

// ErrNoSource is returned by NewStatusWriter when StatusConfig.Source is
// nil.
var ErrNoSource = errors.New("kuberoutes: no Source")

// SourceConfig configures a Source.
type SourceConfig struct {
	// Client reads HTTPRoutes and GRPCRoutes (list and watch). Required.
	Client gatewayclient.Interface
	// Namespace limits the routes read to one namespace. If empty, routes
	// of every namespace are read.
	Namespace string
	// Log receives conversion problems. If nil, nothing is logged.
	Log *slog.Logger
}

// StatusConfig configures a StatusWriter.
type StatusConfig struct {
	// Client writes the routes' status subresources (update). If nil,
	// the Source's client.
	Client gatewayclient.Interface
	// Source is where the writer reads the stored routes and the
	// generations the reported statuses were computed from. Required.
	Source *Source
	// Workers is the number of routes written concurrently. If zero, 2.
	Workers int
	// Log receives write failures. If nil, nothing is logged.
	Log *slog.Logger
}

func discardIfNil(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
