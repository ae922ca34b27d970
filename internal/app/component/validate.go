package component

import (
	"fmt"
	"slices"
	"strings"

	"github.com/causeway-mesh/causeway/federator"
	"github.com/causeway-mesh/causeway/federator/static"
)

// knownComponents are the components of a Causeway cluster, the only path
// segments a cluster's SPIFFE IDs use.
var knownComponents = []string{"gateway", "dnsshim", "federator", federator.AdminComponent}

// signingComponents is the effective signing.components.
func (c *FederatorConfig) signingComponents() []string {
	if len(c.Signing.Components) == 0 {
		return federator.DefaultCertComponents
	}
	return c.Signing.Components
}

// validateSigning checks signing.components and the components of
// signing.tokenReview.accounts: every name must be a known component, and
// every account's component one that signing.components allows (else its
// token could never obtain a certificate).
func (c *FederatorConfig) validateSigning() error {
	for _, name := range c.Signing.Components {
		if !slices.Contains(knownComponents, name) {
			return fmt.Errorf("signing.components: unknown component %q (known: %s)", name, strings.Join(knownComponents, ", "))
		}
		if slices.Contains(federator.PrivilegedComponents, name) {
			return fmt.Errorf("signing.components: %w", privilegedError(name))
		}
	}
	if tr := c.Signing.TokenReview; tr != nil {
		for sa, comp := range tr.Accounts {
			if err := c.checkTokenComponent(comp); err != nil {
				return fmt.Errorf("signing.tokenReview.accounts[%s]: %w", sa, err)
			}
		}
	}
	return nil
}

// checkTokenComponent checks the component a token is bound to.
func (c *FederatorConfig) checkTokenComponent(comp string) error {
	allowed := c.signingComponents()
	switch {
	case !slices.Contains(knownComponents, comp):
		return fmt.Errorf("unknown component %q (known: %s)", comp, strings.Join(knownComponents, ", "))
	case slices.Contains(federator.PrivilegedComponents, comp):
		return privilegedError(comp)
	case !slices.Contains(allowed, comp):
		return fmt.Errorf("component %q is not in signing.components (%s), so its token could never obtain a certificate",
			comp, strings.Join(allowed, ", "))
	}
	return nil
}

// privilegedError explains why comp may not be signed.
func privilegedError(comp string) error {
	return fmt.Errorf("component %q: %w (a token for it would let its holder act as this cluster's federator or operator; "+
		"its certificates come from the CA directory only)", comp, federator.ErrPrivilegedComponent)
}

// validateJoinTokens checks the components of the join tokens file.
func (c *FederatorConfig) validateJoinTokens(tokens map[string]federator.JoinToken) error {
	comps := make([]string, 0, len(tokens))
	for _, t := range tokens {
		comps = append(comps, t.Component)
	}
	slices.Sort(comps)
	for _, comp := range slices.Compact(comps) {
		if err := c.checkTokenComponent(comp); err != nil {
			return fmt.Errorf("join tokens %s: a token is bound to %w", c.Signing.JoinTokensFile, err)
		}
	}
	return nil
}

// validateLocalFiles reads and checks the local files the federator
// depends on before it touches etcd: the static exports file (parsed and
// validated fully, as the export source will) and the join tokens (read
// by the authenticator, which runs before the first etcd write as well).
func (c *FederatorConfig) validateLocalFiles() error {
	if err := c.validateSigning(); err != nil {
		return err
	}
	if p := c.Exports.Static; p != "" {
		src := &static.Source{Path: p, Cluster: c.Cluster, DefaultZone: c.Zone}
		if _, err := src.Load(); err != nil {
			return fmt.Errorf("exports.static: %w", err)
		}
	}
	return nil
}
