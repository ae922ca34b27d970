package certs

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Files of a cluster's CA directory, as `causeway certs init` writes them
// and `causeway certs rotate-ca` changes them.
const (
	// CACertFile is the signing CA's certificate (PEM, 0644).
	CACertFile = "ca.crt"
	// CAKeyFile is the signing CA's private key (PEM PKCS#8, 0600).
	CAKeyFile = "ca.key"
	// BundleFile is the cluster's trust bundle (PEM, 0644): every CA
	// certificate peers must trust, the signing one and, during a
	// rotation, the other one. The federator publishes it.
	BundleFile = "bundle.crt"
	// NextCACertFile and NextCAKeyFile hold the new CA between step 1 and
	// step 2 of a rotation.
	NextCACertFile = "ca.next.crt"
	NextCAKeyFile  = "ca.next.key"
	// RotationStateFile records the progress of a CA rotation (JSON).
	RotationStateFile = "rotate-ca.json"
)

// DefaultCALifetime is the lifetime of a CA made by InitCADir and by a
// rotation when none is given.
const DefaultCALifetime = 365 * 24 * time.Hour

// InitCADir creates a new CA for trustDomain and writes it to dir (created
// 0700 if missing): CACertFile (0644), CAKeyFile (0600) and BundleFile
// (0644, the CA certificate alone). Unless force is set it writes nothing
// if any of those files, or a rotation state, already exists (the error
// wraps fs.ErrExist and names the file); with force it replaces them and
// abandons any rotation in progress.
func InitCADir(dir, trustDomain string, lifetime time.Duration, now time.Time, force bool) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("init ca dir: %w", err)
	}
	if !force {
		for _, name := range []string{CACertFile, CAKeyFile, BundleFile, RotationStateFile, NextCACertFile, NextCAKeyFile} {
			p := filepath.Join(dir, name)
			if _, err := os.Lstat(p); err == nil {
				return nil, fmt.Errorf("init ca dir: %s: %w (pass --force to replace the CA)", p, fs.ErrExist)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("init ca dir: %w", err)
			}
		}
	}
	ca, err := NewCA(trustDomain, lifetime, now)
	if err != nil {
		return nil, fmt.Errorf("init ca dir: %w", err)
	}
	if err := writeCAFiles(dir, ca, CACertFile, CAKeyFile, force); err != nil {
		return nil, fmt.Errorf("init ca dir: %w", err)
	}
	if err := WriteFileExclusive(filepath.Join(dir, BundleFile), EncodeCertificatesPEM([]*x509.Certificate{ca.Cert}), 0o644, force); err != nil {
		return nil, fmt.Errorf("init ca dir: %w", err)
	}
	if force {
		for _, name := range []string{RotationStateFile, NextCACertFile, NextCAKeyFile} {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("init ca dir: %w", err)
			}
		}
	}
	return ca, nil
}

// writeCAFiles writes ca's key (0600) then its certificate (0644).
func writeCAFiles(dir string, ca *CA, certName, keyName string, force bool) error {
	certPEM, keyPEM, err := ca.PEM()
	if err != nil {
		return err
	}
	if err := WriteFileExclusive(filepath.Join(dir, keyName), keyPEM, 0o600, force); err != nil {
		return err
	}
	return WriteFileExclusive(filepath.Join(dir, certName), certPEM, 0o644, force)
}

// loadCAFiles loads a CA from a certificate and a key file of dir.
func loadCAFiles(dir, certName, keyName string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, certName))
	if err != nil {
		return nil, fmt.Errorf("load ca: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, keyName))
	if err != nil {
		return nil, fmt.Errorf("load ca: %w", err)
	}
	ca, err := LoadCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load ca from %s: %w", dir, err)
	}
	return ca, nil
}

// LoadCADir loads a CA directory: the signing CA (CACertFile, CAKeyFile)
// and the bundle (BundleFile, or the signing certificate alone if there is
// none). The bundle always contains the signing certificate and only CAs of
// its trust domain.
func LoadCADir(dir string) (*CA, []*x509.Certificate, error) {
	ca, err := loadCAFiles(dir, CACertFile, CAKeyFile)
	if err != nil {
		return nil, nil, err
	}
	bundle, err := ReadCertificatesFile(filepath.Join(dir, BundleFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		bundle = nil
	case err != nil:
		return nil, nil, fmt.Errorf("load ca dir: %w", err)
	}
	bundle = dedupeCerts(append([]*x509.Certificate{ca.Cert}, bundle...))
	for _, c := range bundle {
		td, err := TrustDomainOfCA(c)
		if err != nil {
			return nil, nil, fmt.Errorf("load ca dir %s: bundle: %w", dir, err)
		}
		if td != ca.TrustDomain {
			return nil, nil, fmt.Errorf("load ca dir %s: bundle CA %s is of trust domain %s, not %s", dir, SerialHex(c), td, ca.TrustDomain)
		}
	}
	return ca, bundle, nil
}

// LoadCASet loads a CA directory into a new CASet.
func LoadCASet(dir string) (*CASet, error) {
	ca, bundle, err := LoadCADir(dir)
	if err != nil {
		return nil, err
	}
	return NewCASet(ca, bundle)
}

// CADirWatcher keeps a CASet equal to a CA directory, so that a federator
// follows `causeway certs rotate-ca` without a restart: it signs with the
// directory's CA and publishes its bundle (watch CASet.Changed).
type CADirWatcher struct {
	// Dir is the CA directory. Required.
	Dir string
	// Set is updated from Dir. Required.
	Set *CASet
	// Interval between two reads of Dir. If zero, defaults to 10s.
	Interval time.Duration
	// Logger; if nil, slog.Default().
	Logger *slog.Logger
}

// Run reloads the directory every Interval until ctx ends and returns nil
// then. A directory that does not load (a rotation step half-way, a bad
// file) leaves the set as it was and is logged; the next read retries.
func (w *CADirWatcher) Run(ctx context.Context) error {
	if w.Set == nil {
		return errors.New("watch ca dir: no ca set")
	}
	every := w.Interval
	if every <= 0 {
		every = 10 * time.Second
	}
	log := w.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("dir", w.Dir)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := w.Reload(); err != nil {
			log.Warn("reload ca dir failed; keeping the current CA and bundle", "err", err)
		}
	}
}

// Reload reads the directory once into the set.
func (w *CADirWatcher) Reload() error {
	ca, bundle, err := LoadCADir(w.Dir)
	if err != nil {
		return err
	}
	return w.Set.Update(ca, bundle)
}

// EncodeCertificatesPEM encodes certificates as concatenated PEM
// "CERTIFICATE" blocks.
func EncodeCertificatesPEM(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		if c != nil {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: pemTypeCertificate, Bytes: c.Raw})...)
		}
	}
	return out
}

// ParseCertificatesPEM parses every PEM "CERTIFICATE" block of b; other
// blocks are skipped. It fails when there is none.
func ParseCertificatesPEM(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != pemTypeCertificate {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate %d: %w", len(out), err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return out, nil
}

// ReadCertificatesFile reads the PEM certificates of path.
func ReadCertificatesFile(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificates: %w", err)
	}
	certs, err := ParseCertificatesPEM(b)
	if err != nil {
		return nil, fmt.Errorf("read certificates from %s: %w", path, err)
	}
	return certs, nil
}
