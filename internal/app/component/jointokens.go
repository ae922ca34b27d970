package component

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/causeway-mesh/causeway/federator"
	"sigs.k8s.io/yaml"
)

// joinTokenEntry is one value of the join tokens file: a component name,
// or {component, maxUses}.
type joinTokenEntry struct {
	Component string `json:"component"`
	MaxUses   int    `json:"maxUses,omitempty"`
}

// readJoinTokens reads signing.joinTokensFile: a map of token to component
// ("<token>: gateway") or to {component: gateway, maxUses: 3}.
func (c *FederatorConfig) readJoinTokens() (map[string]federator.JoinToken, error) {
	f := c.Signing.JoinTokensFile
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("read join tokens: %w", err)
	}
	raw := map[string]json.RawMessage{}
	if err := yaml.UnmarshalStrict(b, &raw); err != nil {
		return nil, fmt.Errorf("join tokens %s: want a map of token to component: %w", f, err)
	}
	tokens := make(map[string]federator.JoinToken, len(raw))
	for tok, v := range raw {
		var comp string
		if err := json.Unmarshal(v, &comp); err == nil {
			tokens[tok] = federator.JoinToken{Component: comp}
			continue
		}
		var e joinTokenEntry
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("join tokens %s: a token's value must be a component or {component, maxUses}: %w", f, err)
		}
		if e.MaxUses < 0 {
			return nil, fmt.Errorf("join tokens %s: a token of component %q has negative maxUses %d", f, e.Component, e.MaxUses)
		}
		tokens[tok] = federator.JoinToken{Component: e.Component, MaxUses: e.MaxUses}
	}
	return tokens, nil
}

// usesFile is where join token uses are counted: signing.joinTokenUsesFile,
// else the tokens file's path with ".uses" appended.
func (c *FederatorConfig) usesFile() string {
	if c.Signing.JoinTokenUsesFile != "" {
		return c.Signing.JoinTokenUsesFile
	}
	return c.Signing.JoinTokensFile + ".uses"
}

// joinTokenAuthenticator is Certs.Sign's join token authenticator.
func (c *FederatorConfig) joinTokenAuthenticator() (federator.Authenticator, error) {
	tokens, err := c.readJoinTokens()
	if err != nil {
		return nil, err
	}
	if err := c.validateJoinTokens(tokens); err != nil {
		return nil, err
	}
	a, err := federator.NewJoinTokenAuthenticatorFromConfig(federator.JoinTokenConfig{
		Tokens: tokens, DefaultMaxUses: c.Signing.JoinTokenMaxUses, UsesFile: c.usesFile()})
	if err != nil {
		return nil, fmt.Errorf("join tokens %s: %w", c.Signing.JoinTokensFile, err)
	}
	return a, nil
}
