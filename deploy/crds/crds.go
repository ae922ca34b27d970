package crds

import _ "embed"

// AuthorizationPolicy is the causeway.dev AuthorizationPolicy CRD.
//
//go:embed causeway.dev_authorizationpolicies.yaml
var AuthorizationPolicy []byte

// RateLimitPolicy is the causeway.dev RateLimitPolicy CRD.
//
//go:embed causeway.dev_ratelimitpolicies.yaml
var RateLimitPolicy []byte
