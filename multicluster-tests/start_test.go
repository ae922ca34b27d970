package multicluster

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/certs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestComponentExitsZeroOnSIGINTWhileObtainingCertificate: a gateway and a
// DNS shim that cannot obtain their certificate (tokenFile missing, the
// federator absent) log the classified error with its hint and keep
// retrying; SIGINT then stops them with exit code 0, as documented.
func TestComponentExitsZeroOnSIGINTWhileObtainingCertificate(t *testing.T) {
	dir := t.TempDir()
	_, err := certs.InitCADir(filepath.Join(dir, "ca"), certs.TrustDomainFor("south", "clusterset.local"), time.Hour, time.Now(), false)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := ln.Addr().String()
	require.NoError(t, ln.Close())
	client := fmt.Sprintf("cluster: south\nfederator: %s\nbootstrap: %s\ncaFile: %s\ntokenFile: %s\n",
		refused, refused, filepath.Join(dir, "ca", "bundle.crt"), filepath.Join(dir, "none.token"))
	for _, tc := range []struct{ component, extra string }{
		{"gateway", "instance: gw-1\nlisten: 127.0.0.1:0\nadvertise: [\"127.0.0.1:4433\"]\nhttp: 127.0.0.1:0\n"},
		{"dnsshim", "listen: 127.0.0.1:0\nhttp: 127.0.0.1:0\n"},
	} {
		t.Run(tc.component, func(t *testing.T) {
			cfg := filepath.Join(dir, tc.component+".yaml")
			require.NoError(t, os.WriteFile(cfg, []byte(client+tc.extra), 0o600))
			p := startProcIn(t, "", tc.component, tc.component, "--config", cfg)
			require.Eventually(t, func() bool {
				out := p.out.String()
				return strings.Contains(out, "level=ERROR") && strings.Contains(out, "tokenFile "+filepath.Join(dir, "none.token")+" cannot be read") &&
					strings.Contains(out, "issued for component "+tc.component)
			}, 20*time.Second, 50*time.Millisecond, "classified ERROR with the hint")
			require.True(t, p.Running(), "it keeps retrying")
			require.NoError(t, p.Signal(syscall.SIGINT))
			if !p.Wait(10 * time.Second) {
				t.Fatalf("%s did not stop on SIGINT", tc.component)
			}
			var ee *exec.ExitError
			if p.Err() != nil {
				require.ErrorAs(t, p.Err(), &ee)
			}
			assert.NoError(t, p.Err(), "exit code 0 on SIGINT; output:\n%s", p.out.String())
			assert.NotContains(t, p.out.String(), "context canceled")
		})
	}
}
