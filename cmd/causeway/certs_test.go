package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSecurityF14_CertsAdminNoMismatch replays F14 through the CLI: with
// admin.crt in place and admin.key missing, `certs admin` used to write a
// new admin.key and then fail on admin.crt, leaving a pair that does not
// match. Now it checks every output file first and writes nothing; with
// --force it writes a matching pair.
func TestSecurityF14_CertsAdminNoMismatch(t *testing.T) {
	dir := t.TempDir()
	caDir, out := filepath.Join(dir, "ca"), filepath.Join(dir, "admin")
	run := func(args ...string) error {
		root := newRoot()
		var stdout bytes.Buffer
		root.SetOut(&stdout)
		root.SetErr(&stdout)
		root.SetArgs(args)
		return root.ExecuteContext(context.Background())
	}
	require.NoError(t, run("certs", "init", "--cluster", "east", "--out", caDir))
	require.NoError(t, run("certs", "admin", "--ca-dir", caDir, "--out", out))
	keyPath, crtPath := filepath.Join(out, "admin.key"), filepath.Join(out, "admin.crt")
	crtBefore, err := os.ReadFile(crtPath)
	require.NoError(t, err)

	require.NoError(t, os.Remove(keyPath))
	err = run("certs", "admin", "--ca-dir", caDir, "--out", out)
	require.ErrorContains(t, err, "already exist")
	require.ErrorContains(t, err, "nothing written")
	require.NoFileExists(t, keyPath, "no key written next to a certificate it does not match")
	crtAfter, err := os.ReadFile(crtPath)
	require.NoError(t, err)
	require.Equal(t, crtBefore, crtAfter)

	require.NoError(t, run("certs", "admin", "--ca-dir", caDir, "--out", out, "--force"))
	_, err = tls.LoadX509KeyPair(crtPath, keyPath)
	require.NoError(t, err, "--force writes a matching pair")
}
