package federator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// DefaultTokenAudience is the audience Certs.Sign requires of
// ServiceAccount tokens unless configured otherwise: components mount a
// projected token for it, so a token stolen from anywhere else (a pod's
// default token, audience the apiserver) is useless here.
const DefaultTokenAudience = "causeway"

// TokenReviewConfig configures a TokenReviewAuthenticator.
type TokenReviewConfig struct {
	// Client calls the cluster's apiserver; the federator's
	// ServiceAccount needs "create" on tokenreviews.authentication.k8s.io.
	// Required.
	Client kubernetes.Interface
	// Accounts maps "namespace/name" of each allowed ServiceAccount to the
	// component it may obtain certificates for. Required.
	Accounts map[string]string
	// Audiences the token must be issued for. If empty,
	// [DefaultTokenAudience].
	Audiences []string
	// Timeout bounds one TokenReview. If zero, defaults to 5s.
	Timeout time.Duration
}

// TokenReviewAuthenticator authenticates Kubernetes ServiceAccount tokens
// with the TokenReview API and maps allowed ServiceAccounts to components.
type TokenReviewAuthenticator struct {
	cfg TokenReviewConfig
}

var _ Authenticator = (*TokenReviewAuthenticator)(nil)

// NewTokenReviewAuthenticator returns an authenticator for cfg.
func NewTokenReviewAuthenticator(cfg TokenReviewConfig) (*TokenReviewAuthenticator, error) {
	if cfg.Client == nil {
		return nil, errors.New("token review config: no Kubernetes client")
	}
	if len(cfg.Accounts) == 0 {
		return nil, errors.New("token review config: no ServiceAccounts")
	}
	accounts := make(map[string]string, len(cfg.Accounts))
	for sa, component := range cfg.Accounts {
		ns, name, ok := strings.Cut(sa, "/")
		if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("token review config: ServiceAccount %q is not namespace/name", sa)
		}
		if component == "" {
			return nil, fmt.Errorf("token review config: ServiceAccount %s has no component", sa)
		}
		accounts[sa] = component
	}
	cfg.Accounts = accounts
	if len(cfg.Audiences) == 0 {
		cfg.Audiences = []string{DefaultTokenAudience}
	}
	cfg.Audiences = slices.Clone(cfg.Audiences)
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &TokenReviewAuthenticator{cfg: cfg}, nil
}

const serviceAccountPrefix = "system:serviceaccount:"

// Authenticate reviews token with the apiserver. A token the apiserver
// does not authenticate, or that is not for one of the audiences, wraps
// ErrUnauthenticated; a user that is not an allowed ServiceAccount wraps
// ErrNotAllowed; a failing API call is returned as is.
func (a *TokenReviewAuthenticator) Authenticate(ctx context.Context, token string) (Principal, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	review, err := a.cfg.Client.AuthenticationV1().TokenReviews().Create(ctx, &authv1.TokenReview{
		Spec: authv1.TokenReviewSpec{Token: token, Audiences: a.cfg.Audiences},
	}, metav1.CreateOptions{})
	if err != nil {
		return Principal{}, fmt.Errorf("review token: %w", err)
	}
	st := review.Status
	if !st.Authenticated {
		reason := st.Error
		if reason == "" {
			reason = "not authenticated"
		}
		return Principal{}, fmt.Errorf("review token: %s: %w", reason, ErrUnauthenticated)
	}
	if !slices.ContainsFunc(st.Audiences, func(aud string) bool { return slices.Contains(a.cfg.Audiences, aud) }) {
		return Principal{}, fmt.Errorf("review token: audiences %q are not %q: %w", st.Audiences, a.cfg.Audiences, ErrUnauthenticated)
	}
	user := st.User.Username
	rest, ok := strings.CutPrefix(user, serviceAccountPrefix)
	if !ok {
		return Principal{}, fmt.Errorf("review token: %s is not a ServiceAccount: %w", user, ErrNotAllowed)
	}
	sa := strings.Replace(rest, ":", "/", 1)
	component, ok := a.cfg.Accounts[sa]
	if !ok {
		return Principal{}, fmt.Errorf("review token: ServiceAccount %s is not allowed: %w", sa, ErrNotAllowed)
	}
	return Principal{Name: user, Component: component}, nil
}
