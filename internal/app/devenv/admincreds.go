package devenv

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/causeway-mesh/causeway/internal/app/cli/certsctl"
)

// minAdminLifetime is the least lifetime of the admin certificate, so an
// operator's CLI keeps working for a whole day of `causeway dev` (capped by
// the CA's own lifetime).
const minAdminLifetime = 24 * time.Hour

// adminCreds are the files the causeway CLI needs to call a cluster's
// admin API.
type adminCreds struct {
	Cert, Key, CA string
}

// writeAdminCreds issues the cluster's admin certificate
// (spiffe://<trust domain>/admin) and writes admin.crt, admin.key (0600)
// and ca.crt to the cluster's directory, returning their absolute paths.
func (c *cluster) writeAdminCreds(lifetime time.Duration) (adminCreds, error) {
	r, err := certsctl.WriteAdminCreds(c.ca, []*x509.Certificate{c.ca.Cert}, c.dir,
		max(lifetime, minAdminLifetime), time.Now(), true)
	if err != nil {
		return adminCreds{}, fmt.Errorf("%s: %w", c.spec.Name, err)
	}
	return adminCreds{Cert: r.Cert, Key: r.Key, CA: r.CA}, nil
}
