package devenv

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/causeway-mesh/causeway/federator"
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
// and ca.crt to dir/clusters/<name>/, returning their absolute paths.
func (c *cluster) writeAdminCreds(dir string, lifetime time.Duration) (adminCreds, error) {
	pair, err := c.ca.NewLeafKeyPair(federator.AdminComponent, max(lifetime, minAdminLifetime), time.Now())
	if err != nil {
		return adminCreds{}, fmt.Errorf("issue admin certificate of %s: %w", c.spec.Name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(pair.PrivateKey)
	if err != nil {
		return adminCreds{}, fmt.Errorf("encode admin key of %s: %w", c.spec.Name, err)
	}
	abs, err := filepath.Abs(filepath.Join(dir, "clusters", c.spec.Name))
	if err != nil {
		return adminCreds{}, fmt.Errorf("admin credentials of %s: %w", c.spec.Name, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return adminCreds{}, fmt.Errorf("admin credentials of %s: %w", c.spec.Name, err)
	}
	creds := adminCreds{
		Cert: filepath.Join(abs, "admin.crt"),
		Key:  filepath.Join(abs, "admin.key"),
		CA:   filepath.Join(abs, "ca.crt"),
	}
	for _, f := range []struct {
		path string
		data []byte
		perm os.FileMode
	}{
		{creds.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600},
		{creds.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pair.Certificate[0]}), 0o644},
		{creds.CA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.ca.Cert.Raw}), 0o644},
	} {
		if err := certs.WriteFileExclusive(f.path, f.data, f.perm, true); err != nil {
			return adminCreds{}, fmt.Errorf("admin credentials of %s: %w", c.spec.Name, err)
		}
	}
	return creds, nil
}
