package certsctl

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/causeway-mesh/causeway/certs"
)

// AdminComponent is the SPIFFE ID path of the operator identity the
// federator's Admin API accepts.
const AdminComponent = "admin"

// DefaultAdminLifetime is the lifetime of an admin certificate when none
// is given: an operator's working day, not longer.
const DefaultAdminLifetime = 24 * time.Hour

// AdminOptions are the flags of `causeway certs admin`.
type AdminOptions struct {
	// CADir is the cluster's CA directory. Required.
	CADir string
	// Out is the directory receiving admin.crt, admin.key and ca.crt.
	// Required.
	Out string
	// Lifetime of the certificate. If zero, DefaultAdminLifetime; capped by
	// the CA's own expiry.
	Lifetime time.Duration
	// Force replaces existing files.
	Force bool
	// Now is the clock. If nil, time.Now.
	Now func() time.Time
}

// AdminResult is the answer of `causeway certs admin`.
type AdminResult struct {
	ID   string   `json:"id"`
	Cert string   `json:"cert"`
	Key  string   `json:"key"`
	CA   string   `json:"ca"`
	Leaf CertInfo `json:"leaf"`
}

// IssueAdmin issues the cluster's admin identity
// (spiffe://<trust domain>/admin) from its CA directory and writes the
// files the causeway CLI's --cert, --key and --ca take. The key is written
// 0600; existing files are kept unless o.Force.
func IssueAdmin(o AdminOptions) (*AdminResult, error) {
	if o.CADir == "" || o.Out == "" {
		return nil, errors.New("--ca-dir and --out are required")
	}
	if o.Lifetime < 0 {
		return nil, errors.New("--lifetime must be positive")
	}
	if o.Lifetime == 0 {
		o.Lifetime = DefaultAdminLifetime
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	ca, bundle, err := certs.LoadCADir(o.CADir)
	if err != nil {
		return nil, err
	}
	return WriteAdminCreds(ca, bundle, o.Out, o.Lifetime, now(), o.Force)
}

// WriteAdminCreds issues an admin certificate from ca (lifetime capped by
// the CA's expiry) and writes admin.crt, admin.key (0600) and ca.crt (the
// certificates of bundle) to dir, returning their absolute paths.
func WriteAdminCreds(ca *certs.CA, bundle []*x509.Certificate, dir string, lifetime time.Duration, now time.Time, force bool) (*AdminResult, error) {
	if left := ca.Cert.NotAfter.Sub(now); lifetime > left {
		lifetime = left
	}
	pair, err := ca.NewLeafKeyPair(AdminComponent, lifetime, now)
	if err != nil {
		return nil, fmt.Errorf("issue admin certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(pair.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("encode admin key: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("admin credentials: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("admin credentials: %w", err)
	}
	if len(bundle) == 0 {
		bundle = []*x509.Certificate{ca.Cert}
	}
	r := &AdminResult{
		Cert: filepath.Join(abs, "admin.crt"),
		Key:  filepath.Join(abs, "admin.key"),
		CA:   filepath.Join(abs, "ca.crt"),
	}
	files := []adminFile{
		{r.Key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600},
		{r.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pair.Certificate[0]}), 0o644},
		{r.CA, certs.EncodeCertificatesPEM(bundle), 0o644},
	}
	if err := writeAdminFiles(files, force); err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("admin credentials: %w", err)
	}
	id, err := certs.IDFromCertificate(leaf)
	if err != nil {
		return nil, fmt.Errorf("admin credentials: %w", err)
	}
	r.ID, r.Leaf = id.String(), newCertInfo(leaf, now)
	return r, nil
}

// adminFile is one file of the admin credentials.
type adminFile struct {
	path string
	data []byte
	perm os.FileMode
}

// writeAdminFiles writes files as one unit: without force, it checks every
// path first and writes nothing if any exists (a kept admin.crt next to a
// new admin.key would not match it); a write that still fails removes the
// files this call created.
func writeAdminFiles(files []adminFile, force bool) error {
	if !force {
		var existing []string
		for _, f := range files {
			if _, err := os.Lstat(f.path); err == nil {
				existing = append(existing, f.path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("admin credentials: check %s: %w", f.path, err)
			}
		}
		switch len(existing) {
		case 0:
		case 1:
			return fmt.Errorf("admin credentials: %s already exists: pass --force to overwrite it (nothing written)", existing[0])
		default:
			return fmt.Errorf("admin credentials: %s already exist: pass --force to overwrite them (nothing written)", strings.Join(existing, ", "))
		}
	}
	for i, f := range files {
		if err := certs.WriteFileExclusive(f.path, f.data, f.perm, force); err != nil {
			if !force {
				for _, done := range files[:i] {
					_ = os.Remove(done.path)
				}
			}
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("admin credentials: %s already exists: pass --force to overwrite it (nothing written)", f.path)
			}
			return fmt.Errorf("admin credentials: %w", err)
		}
	}
	return nil
}

// WriteTable implements cli.Tabular.
func (r *AdminResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "issued %s\n  certificate: %s\n  private key: %s (0600)\n  CA: %s\n", r.ID, r.Cert, r.Key, r.CA)
	writeCert(w, "  ", r.Leaf)
	_, err := fmt.Fprintf(w, "use it with: causeway status --federator HOST:PORT --cert %s --key %s --ca %s\n", r.Cert, r.Key, r.CA)
	return err
}
