package multicluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/internal/app/devenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// cliResult is one run of the causeway binary.
type cliResult struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// runCLI runs the causeway binary with args (and extra environment) to
// completion.
func runCLI(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	r, err := execCLI(causewayBinary(t), env, args...) // builds once; not part of the command's deadline
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// execCLI is runCLI for bin, with no testing.T: conditions polled by
// Eventually run on another goroutine, where t.Fatal must not be called.
// A non-zero exit is not an error; not being able to run bin is.
func execCLI(bin string, env []string, args ...string) (cliResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		return r, fmt.Errorf("run causeway %v: %w", args, err)
	}
	return r, nil
}

// mustCLI runs the causeway binary and requires success.
func mustCLI(t *testing.T, env []string, args ...string) string {
	t.Helper()
	r := runCLI(t, env, args...)
	require.Equal(t, 0, r.code, "causeway %v: exit %d\nstderr: %s", args, r.code, r.stderr)
	return r.stdout
}

// exportsJSON is what the test reads of `causeway exports -o json`.
type exportsJSON struct {
	Services []struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
		Clusters  []struct {
			Cluster        string `json:"cluster"`
			Type           string `json:"type"`
			ReadyEndpoints int    `json:"readyEndpoints"`
			Drained        bool   `json:"drained"`
		} `json:"clusters"`
	} `json:"services"`
}

// drained returns, per "namespace/name", the drained flag of each exporting cluster.
func (e exportsJSON) drained() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, s := range e.Services {
		m := map[string]bool{}
		for _, c := range s.Clusters {
			m[c.Cluster] = c.Drained
		}
		out[s.Namespace+"/"+s.Name] = m
	}
	return out
}

func readExports(t *testing.T, env []string, args ...string) exportsJSON {
	t.Helper()
	out := mustCLI(t, env, append([]string{"exports", "-o", "json"}, args...)...)
	var e exportsJSON
	require.NoError(t, json.Unmarshal([]byte(out), &e), "exports -o json:\n%s", out)
	return e
}

// Over 80 lines: one scenario whose steps share the servers it starts.
func TestAdminCLIAgainstDev(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and runs causeway dev")
	}
	t.Parallel()
	stateFile := filepath.Join(t.TempDir(), "state.json")
	p := startDev(t, "--net", "127.81.0.0/16", "--state-file", stateFile)
	st := p.waitState(t, stateFile, 60*time.Second)
	env := []string{"CAUSEWAY_STATE_FILE=" + stateFile} // the first cluster, east, answers

	// The state file names every cluster's admin API and credentials.
	east := clusterByName(t, st, "east")
	for _, c := range st.Clusters {
		require.NotEmpty(t, c.Federator, "cluster %s", c.Name)
		for _, f := range []string{c.AdminCert, c.AdminKey, c.CAFile} {
			require.True(t, filepath.IsAbs(f), "cluster %s: %q is not absolute", c.Name, f)
		}
		fi, err := os.Stat(c.AdminKey)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "cluster %s admin key", c.Name)
	}

	// clusters: a table with every cluster, its locality and gateway.
	out := mustCLI(t, nil, "clusters", "--state-file", stateFile)
	t.Logf("causeway clusters:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 1+len(st.Clusters), out)
	require.Regexp(t, `^NAME +REGION +ZONE +TRUST DOMAIN +GATEWAYS +EXPORTS +DRAINED +TRUST$`, lines[0])
	for _, c := range st.Clusters {
		require.Regexp(t, `(?m)^`+c.Name+`( \*)? +`+c.Region+` +`+c.Zone+` +`+c.Name+`\.clusterset\.local +`+
			strings.ReplaceAll(c.Gateway, ".", `\.`)+` +1 +no +(own|trusted)$`, out)
	}

	// exports -o json: echo from east and west, clock from north, none drained.
	noneDrained := map[string]map[string]bool{
		"demo/clock": {"north": false},
		"demo/echo":  {"east": false, "west": false},
	}
	ex := readExports(t, env)
	require.Equal(t, noneDrained, ex.drained())
	require.Equal(t, "ClusterSetIP", ex.Services[1].Clusters[0].Type)
	require.Equal(t, 1, ex.Services[1].Clusters[0].ReadyEndpoints)

	// imports of north, asked through north's federator, as YAML.
	var imps struct {
		Cluster string `json:"cluster"`
		Imports []struct {
			Name     string   `json:"name"`
			IPs      []string `json:"ips"`
			Clusters []string `json:"clusters"`
		} `json:"imports"`
	}
	out = mustCLI(t, env, "imports", "--cluster", "north", "-o", "yaml")
	require.NoError(t, yaml.Unmarshal([]byte(out), &imps), out)
	require.Equal(t, "north", imps.Cluster)
	require.Len(t, imps.Imports, 2)
	require.Equal(t, "echo", imps.Imports[1].Name)
	require.Equal(t, []string{clusterByName(t, st, "north").VIPs["demo/echo"]}, imps.Imports[1].IPs)
	require.Equal(t, []string{"east", "west"}, imps.Imports[1].Clusters)

	// drain east's echo: the answering federator shows it at once, the
	// others as soon as they mirror it; nothing else is drained.
	out = mustCLI(t, env, "drain", "east", "--service", "demo/echo")
	require.Equal(t, "drained demo/echo in cluster east\n", out)
	want := map[string]map[string]bool{"demo/clock": {"north": false}, "demo/echo": {"east": true, "west": false}}
	require.Equal(t, want, readExports(t, env).drained())
	bin := causewayBinary(t)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		// No require here: the condition runs on another goroutine.
		r, err := execCLI(bin, env, "exports", "-o", "json", "--cluster", "west")
		if !assert.NoError(c, err) || !assert.Zero(c, r.code, "stderr: %s", r.stderr) {
			return
		}
		var e exportsJSON
		if !assert.NoError(c, json.Unmarshal([]byte(r.stdout), &e), "exports -o json:\n%s", r.stdout) {
			return
		}
		assert.Equal(c, want, e.drained(), "west's federator has not seen the drain yet")
	}, 10*time.Second, 100*time.Millisecond)
	require.Equal(t, "demo/echo in cluster east was already drained", strings.Split(mustCLI(t, env, "drain", "east", "--service", "demo/echo"), " (")[0])

	// undrain: back to nothing drained.
	out = mustCLI(t, env, "undrain", "east", "--service", "demo/echo")
	require.Equal(t, "undrained demo/echo in cluster east\n", out)
	require.Equal(t, noneDrained, readExports(t, env).drained())

	// status of a live federator.
	var status struct {
		Cluster string `json:"cluster"`
		Synced  bool   `json:"synced"`
		Etcd    struct {
			Reachable bool `json:"reachable"`
		} `json:"etcd"`
	}
	out = mustCLI(t, env, "status", "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(out), &status), out)
	require.Equal(t, "east", status.Cluster)
	require.True(t, status.Synced)
	require.True(t, status.Etcd.Reachable)

	// An unreachable federator API: exit 1 at once, one line naming the address.
	r := runCLI(t, nil, "status", "--federator", "127.0.0.1:1", "--cert", east.AdminCert, "--key", east.AdminKey, "--ca", east.CAFile)
	require.Equal(t, 1, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	require.Empty(t, r.stdout)
	require.Equal(t, 1, strings.Count(r.stderr, "\n"), "stderr: %q", r.stderr)
	require.Regexp(t, `^causeway: federator API 127\.0\.0\.1:1 unreachable: .+\n$`, r.stderr)
	require.Less(t, r.took, 10*time.Second)
	t.Logf("unreachable: %s(%s)", r.stderr, r.took.Round(time.Millisecond))

	checkNamesAgainstDev(t, env, st)

	code, _ := p.stop(t, syscall.SIGTERM, 5*time.Second)
	require.Equal(t, 0, code, "stderr:\n%s", p.stderr)
}

// checkNamesAgainstDev: the federator API and the HTTP endpoint have one
// name each; the old names still work with a notice; --cluster without a
// state file, the HTTP port as federator address, an undrain of a service
// not exported and an empty listing all say what is wrong.
func checkNamesAgainstDev(t *testing.T, env []string, st *devenv.State) {
	t.Helper()
	west := clusterByName(t, st, "west")
	creds := []string{"--cert", west.AdminCert, "--key", west.AdminKey, "--ca", west.CAFile}
	status := func(r cliResult) string {
		var s struct {
			Cluster   string `json:"cluster"`
			Federator string `json:"federator"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &s), "stdout: %s\nstderr: %s", r.stdout, r.stderr)
		require.Equal(t, west.Federator, s.Federator)
		return s.Cluster
	}
	// New flag; old flag (a notice on stderr); old environment variable.
	r := runCLI(t, nil, append([]string{"status", "-o", "json", "--federator", west.Federator}, creds...)...)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "west", status(r))
	r = runCLI(t, nil, append([]string{"status", "-o", "json", "--admin", west.Federator}, creds...)...)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "west", status(r))
	require.Contains(t, r.stderr, "--admin has been deprecated, use --federator")
	r = runCLI(t, []string{"CAUSEWAY_ADMIN=" + west.Federator, "CAUSEWAY_CERT=" + west.AdminCert, "CAUSEWAY_KEY=" + west.AdminKey,
		"CAUSEWAY_CA=" + west.CAFile}, "status", "-o", "json")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "west", status(r))
	require.Contains(t, r.stderr, "CAUSEWAY_ADMIN is deprecated, use CAUSEWAY_FEDERATOR")
	// With the state file, --cluster picks the federator.
	r = runCLI(t, env, "status", "-o", "json", "--cluster", "west")
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "west", status(r))

	// --cluster without a state file: an error, not another cluster's answer.
	r = runCLI(t, nil, append([]string{"status", "--federator", west.Federator, "--cluster", "north"}, creds...)...)
	require.Equal(t, 1, r.code, "stdout: %s", r.stdout)
	require.Empty(t, r.stdout)
	require.Contains(t, r.stderr, "--cluster needs a state file (--state-file or CAUSEWAY_STATE_FILE)")

	// The HTTP endpoint given as the federator API: a hint.
	r = runCLI(t, nil, append([]string{"status", "--federator", west.HTTP}, creds...)...)
	require.Equal(t, 1, r.code, "stdout: %s", r.stdout)
	require.Contains(t, r.stderr, "the HTTP endpoint? the federator API listens on :7443 by default")

	// Undrain of a service the cluster does not export: an error, as drain.
	r = runCLI(t, env, "undrain", "east", "--service", "demo/nope")
	require.Equal(t, 1, r.code, "stdout: %s", r.stdout)
	require.Equal(t, "causeway: cluster east does not export demo/nope\n", r.stderr)

	// An empty listing says so on stderr; JSON stays an empty list.
	r = runCLI(t, env, "exports", "-n", "nope")
	require.Equal(t, 0, r.code, r.stderr)
	require.Empty(t, r.stdout)
	require.Equal(t, "No exports found.\n", r.stderr)
	require.JSONEq(t, `{"services": []}`, mustCLI(t, env, "exports", "-n", "nope", "-o", "json"))

	// explain finds the gateway's HTTP endpoint in the state file, the
	// first cluster by default, as the other verbs.
	r = runCLI(t, env, "explain", "demo/echo", "--port", "8080")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "from east")
}
