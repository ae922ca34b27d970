package federator

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// MinJoinTokenLength is the shortest join token accepted (characters).
const MinJoinTokenLength = 32

// DefaultJoinTokenMaxUses is how many certificates one join token obtains
// when its entry sets no maxUses. A use is a certificate issued without
// proof of a still-valid leaf of the same identity: a component's first
// certificate after each start (components keep their key in memory only).
// Renewals prove the current leaf and use nothing. Ten lets a component
// restart a few times; a leaked token is not unlimited identity issuance.
const DefaultJoinTokenMaxUses = 10

// ErrTokenUsedUp: the join token has obtained its maxUses certificates
// (UNAUTHENTICATED: like an expired credential, retrying does not help).
var ErrTokenUsedUp = errors.New("federator: join token used up")

// JoinToken is what a join token is bound to.
type JoinToken struct {
	// Component the token obtains certificates for. Required.
	Component string
	// MaxUses is how many certificates the token obtains without a
	// renewal proof. If zero, the authenticator's default.
	MaxUses int
}

// JoinTokenConfig configures a JoinTokenAuthenticator.
type JoinTokenConfig struct {
	// Tokens maps each token (at least MinJoinTokenLength characters) to
	// its binding. Required.
	Tokens map[string]JoinToken
	// DefaultMaxUses applies to tokens without MaxUses. If zero,
	// DefaultJoinTokenMaxUses.
	DefaultMaxUses int
	// UsesFile persists how often each token was used (by SHA-256 digest,
	// never the token), so a restart does not give a token its uses back;
	// federator replicas on one host share it (it is locked per use). If
	// empty, counts live in memory and restart from zero.
	UsesFile string
}

// JoinTokenAuthenticator authenticates static join tokens (static hosts
// and dev), each bound to one component and a number of uses. Tokens are
// kept only as SHA-256 digests and compared in constant time against every
// known token.
type JoinTokenAuthenticator struct {
	tokens []joinToken
	uses   useCounter
}

type joinToken struct {
	digest    [sha256.Size]byte
	component string
	maxUses   int
}

// useCounter records one use of a token if it has uses left, returning
// how many it had used before.
type useCounter interface {
	use(digest string, maxUses int) (used int, err error)
}

var _ Authenticator = (*JoinTokenAuthenticator)(nil)

// NewJoinTokenAuthenticator returns an authenticator for tokens, which maps
// each token (at least MinJoinTokenLength characters) to its component;
// each has DefaultJoinTokenMaxUses uses, counted in memory.
func NewJoinTokenAuthenticator(tokens map[string]string) (*JoinTokenAuthenticator, error) {
	cfg := JoinTokenConfig{Tokens: make(map[string]JoinToken, len(tokens))}
	for tok, c := range tokens {
		cfg.Tokens[tok] = JoinToken{Component: c}
	}
	return NewJoinTokenAuthenticatorFromConfig(cfg)
}

// NewJoinTokenAuthenticatorFromConfig returns an authenticator for cfg.
// Tokens bound to a privileged component (PrivilegedComponents) are
// refused whatever else allows them.
func NewJoinTokenAuthenticatorFromConfig(cfg JoinTokenConfig) (*JoinTokenAuthenticator, error) {
	if len(cfg.Tokens) == 0 {
		return nil, errors.New("join tokens: none configured")
	}
	if cfg.DefaultMaxUses < 0 {
		return nil, fmt.Errorf("join tokens: default maxUses %d is negative", cfg.DefaultMaxUses)
	}
	if cfg.DefaultMaxUses == 0 {
		cfg.DefaultMaxUses = DefaultJoinTokenMaxUses
	}
	a := &JoinTokenAuthenticator{uses: &memoryUses{used: map[string]int{}}}
	if cfg.UsesFile != "" {
		if err := checkUsesFile(cfg.UsesFile); err != nil {
			return nil, err
		}
		a.uses = &fileUses{path: cfg.UsesFile}
	}
	for tok, b := range cfg.Tokens {
		switch {
		case len(tok) < MinJoinTokenLength:
			return nil, fmt.Errorf("join tokens: a token of component %q is shorter than %d characters", b.Component, MinJoinTokenLength)
		case b.Component == "":
			return nil, errors.New("join tokens: a token has no component")
		case slices.Contains(PrivilegedComponents, b.Component):
			return nil, fmt.Errorf("join tokens: a token is bound to %q: %w", b.Component, ErrPrivilegedComponent)
		case b.MaxUses < 0:
			return nil, fmt.Errorf("join tokens: a token of component %q has negative maxUses %d", b.Component, b.MaxUses)
		}
		if b.MaxUses == 0 {
			b.MaxUses = cfg.DefaultMaxUses
		}
		a.tokens = append(a.tokens, joinToken{digest: sha256.Sum256([]byte(tok)), component: b.Component, maxUses: b.MaxUses})
	}
	return a, nil
}

// Authenticate compares token with every known token in constant time. A
// known token authenticates even when used up: the Principal's Consume
// refuses the next use, and a renewal (which proves a valid leaf) needs
// none.
func (a *JoinTokenAuthenticator) Authenticate(_ context.Context, token string) (Principal, error) {
	d := sha256.Sum256([]byte(token))
	found := -1
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(d[:], a.tokens[i].digest[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Principal{}, fmt.Errorf("join token unknown: %w", ErrUnauthenticated)
	}
	t := a.tokens[found]
	name := "join-token:" + hex.EncodeToString(t.digest[:4])
	key := hex.EncodeToString(t.digest[:])
	return Principal{Name: name, Component: t.component, Consume: func() error {
		used, err := a.uses.use(key, t.maxUses)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if used >= t.maxUses {
			return fmt.Errorf("%s has obtained its %d certificates (maxUses): issue a new token, or renew with the still-valid leaf: %w",
				name, t.maxUses, ErrTokenUsedUp)
		}
		return nil
	}}, nil
}

// NewJoinToken returns a random join token (256 bits, base64url).
func NewJoinToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate join token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// memoryUses counts uses in memory.
type memoryUses struct {
	mu   sync.Mutex // guards used
	used map[string]int
}

func (m *memoryUses) use(digest string, maxUses int) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.used[digest]
	if n < maxUses {
		m.used[digest] = n + 1
	}
	return n, nil
}
