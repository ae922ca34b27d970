package multicluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/causeway-mesh/causeway/internal/app/devenv"
	"github.com/stretchr/testify/require"
)

// runbookOrder is the order the test executes docs/runbooks in, all
// against one `causeway dev` clusterset: add-cluster.md adds the cluster
// ("south", processes started from files) that etcd-outage.md,
// rotate-certificates.md and remove-cluster.md work on.
var runbookOrder = []string{
	"add-cluster.md",
	"failover.md",
	"canary-shift.md",
	"etcd-outage.md",
	"rotate-certificates.md",
	"remove-cluster.md",
}

const (
	runbookDevNet     = "127.87.0.0/16" // causeway dev
	runbookNewIP      = "127.88.4.1"    // the added cluster's components
	runbookNewVIPs    = "127.88.4.128/25"
	runbookEtcdRelay  = "127.88.0.1:2379" // the added federator's way to etcd
	runbookBlockLimit = 2 * time.Minute   // per shell block
)

// TestRunbooks executes every ```sh block of every runbook in
// docs/runbooks, in order, each with `bash -euo pipefail` and a time limit,
// against a live `causeway dev` clusterset, so the runbooks cannot rot.
//
// The blocks of one runbook run as one operator's shell session: exported
// variables carry from a block to the next (each block runs in a fresh
// bash that sources the previous block's exported variables and its
// functions). The test gives each session only the operator's choices
// (STATE_FILE, NEW_*, LEAF_LIFETIME, PROPAGATION_WAIT); the runbook's
// variables block derives the rest from the state file, and the test
// checks those values against its own reading of the state file.
//
// RUNBOOK_DIR, when set, names another directory to read the runbooks
// from (a draft, or a copy with a deliberately broken command).
//
// The etcd outage cannot stop the embedded etcd of `causeway dev` from
// outside, so the added cluster's federator reaches etcd through a TCP
// relay (NEW_ETCD) that the test cuts before the block marked etcd-down
// and restores before the one marked etcd-up: for that cluster, the
// federation etcd is gone.
func TestRunbooks(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs causeway dev and the runbooks' commands")
	}
	t.Parallel() // its addresses (127.87/16, 127.88/16) are its own
	root := repoRoot(t)
	ensureRunbookTools(t, root)
	dir := filepath.Join(root, "docs", "runbooks")
	if d := os.Getenv("RUNBOOK_DIR"); d != "" {
		dir = d // a draft, or a deliberately broken copy
	}
	books := loadRunbooks(t, dir)
	bin := causewayBinary(t)

	work := t.TempDir()
	stateFile := filepath.Join(work, "state.json")
	routesFile := filepath.Join(work, "routes.yaml") // canary-shift.md edits it
	require.NoError(t, os.WriteFile(routesFile, []byte("version: 1\n"), 0o644))
	p := startDev(t, "--net", runbookDevNet, "--state-file", stateFile, "--routes", routesFile)
	st := p.waitState(t, stateFile, 90*time.Second)
	relay := startRunbookRelay(t, runbookEtcdRelay, st.Etcd)

	newDir := filepath.Join(work, "south")
	inputs := map[string]string{
		"STATE_FILE":       stateFile,
		"NEW_CLUSTER":      "south",
		"NEW_REGION":       "us-east",
		"NEW_ZONE":         "us-east-1b",
		"NEW_IP":           runbookNewIP,
		"NEW_VIPS":         runbookNewVIPs,
		"NEW_DIR":          newDir,
		"NEW_ETCD":         runbookEtcdRelay,
		"LEAF_LIFETIME":    "15s",
		"PROPAGATION_WAIT": "2s",
	}
	t.Cleanup(func() { stopRunbookProcesses(t, newDir) })
	want := runbookDerivedVars(st)
	env := runbookEnv(filepath.Dir(bin), inputs, want)

	start := time.Now()
	for _, rb := range books {
		ok := t.Run(strings.TrimSuffix(rb.name, ".md"), func(t *testing.T) {
			runRunbook(t, rb, env, want, relay)
		})
		if !ok {
			t.Fatalf("runbook %s failed; the runbooks after it build on it", rb.name)
		}
	}
	t.Logf("all runbooks passed in %s", time.Since(start).Round(time.Second))
}

// ensureRunbookTools installs what the runbooks call, as `make dev` does,
// and skips the test when that is impossible.
func ensureRunbookTools(t *testing.T, root string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "hack", "ensure-apt.sh"),
		"dig:bind9-dnsutils", "curl:curl", "jq:jq", "python3:python3")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("the runbooks need dig, curl, jq and python3, which could not be installed: %v\n%s", err, out)
	}
}

// loadRunbooks parses the runbooks in runbookOrder and checks that every
// other Markdown file of dir is README.md without shell blocks, so a new
// runbook cannot be left out of the test.
func loadRunbooks(t *testing.T, dir string) []*runbook {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	var books []*runbook
	for _, name := range runbookOrder {
		rb, err := parseRunbook(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("runbook %s: %v", name, err)
		}
		if len(rb.blocks) == 0 {
			t.Fatalf("runbook %s has no ```sh blocks", name)
		}
		if rb.blocks[0].directive != "variables" {
			t.Fatalf("%s:%d: the first sh block must be the variables block (<!-- runbook-test: variables -->)", rb.path, rb.blocks[0].line)
		}
		books = append(books, rb)
	}
	for _, f := range files {
		name := filepath.Base(f)
		if slices.Contains(runbookOrder, name) {
			continue
		}
		if name != "README.md" {
			t.Fatalf("%s is not in runbookOrder: add it there so that it is executed", f)
		}
		rb, err := parseRunbook(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(rb.blocks) > 0 {
			t.Fatalf("%s:%d: README.md is not executed; put shell blocks in a runbook", f, rb.blocks[0].line)
		}
	}
	return books
}

// runbookDerivedVars are the values a runbook's variables block derives
// from the state file, as the test reads them.
func runbookDerivedVars(st *devenv.State) map[string]string {
	v := map[string]string{"ETCD": st.Etcd, "DOMAIN": st.Domain}
	for _, c := range st.Clusters {
		up := strings.ToUpper(c.Name)
		host, port, _ := net.SplitHostPort(c.DNS)
		v[up+"_DNS_IP"] = host
		v["DNS_PORT"] = port
		v[up+"_VIP_ECHO"] = c.VIPs["demo/echo"]
		v[up+"_VIP_CLOCK"] = c.VIPs["demo/clock"]
		v[up+"_GATEWAY"] = c.Gateway
	}
	return v
}

// runbookEnv is the environment of every block: this process's, minus
// anything that could stand in for what a runbook must set itself, plus
// the built binary first in PATH and the operator's inputs.
func runbookEnv(binDir string, inputs, derived map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		_, isInput := inputs[name]
		_, isDerived := derived[name]
		if isInput || isDerived || name == "PATH" || strings.HasPrefix(name, "CAUSEWAY_") || strings.HasPrefix(name, "NEW_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	for k, v := range inputs {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// runRunbook runs rb's blocks in order as one shell session.
func runRunbook(t *testing.T, rb *runbook, env []string, want map[string]string, relay *runbookRelay) {
	session := t.TempDir()
	envFile := filepath.Join(session, "exports.sh")
	started := time.Now()
	for i, b := range rb.blocks {
		switch b.directive {
		case "etcd-down":
			relay.cut()
			t.Logf("%s:%d: etcd cut off from the added cluster's federator", rb.name, b.line)
		case "etcd-up":
			if err := relay.restore(); err != nil {
				t.Fatalf("%s:%d: restore the etcd relay: %v", rb.name, b.line, err)
			}
			t.Logf("%s:%d: etcd reachable again", rb.name, b.line)
		}
		out, took, err := runRunbookBlock(session, envFile, env, b.text)
		if err != nil {
			t.Fatalf("%s:%d: block %d of %d failed after %s: %v\n--- block ---\n%s--- output ---\n%s",
				rb.path, b.line, i+1, len(rb.blocks), took.Round(time.Millisecond), err, b.text, out)
		}
		t.Logf("%s:%d: block %d ok in %s\n%s", rb.name, b.line, i+1, took.Round(time.Millisecond), runbookIndent(out))
		if b.directive == "variables" {
			checkRunbookVars(t, rb, b, session, envFile, env, want)
		}
	}
	t.Logf("%s: %d blocks in %s", rb.name, len(rb.blocks), time.Since(started).Round(time.Millisecond))
}

// runRunbookBlock runs one block with bash -euo pipefail in its own
// process group, after sourcing the session's exported variables and
// functions, and saves those it leaves for the next block. Past
// runbookBlockLimit the whole group is killed.
func runRunbookBlock(dir, envFile string, env []string, text string) (string, time.Duration, error) {
	script := filepath.Join(dir, "block.sh")
	body := fmt.Sprintf(`if [ -f %[1]q ]; then source %[1]q; fi
%[2]s
{ export -p | grep -Ev '^declare -x (BASHOPTS|SHELLOPTS|BASH_[A-Z_]*|PWD|OLDPWD|SHLVL|_)(=|$)'; declare -f; } > %[1]q.next
mv %[1]q.next %[1]q
`, envFile, text)
	if err := os.WriteFile(script, []byte(body), 0o600); err != nil {
		return "", 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), runbookBlockLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", script)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A background process that keeps the output pipe open must not hold
	// the test: the runbooks redirect their daemons' output, but a mistake
	// there should fail the block, not hang it.
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if ctx.Err() != nil {
		err = fmt.Errorf("no exit within %s: %w", runbookBlockLimit, err)
	} else if errors.Is(err, exec.ErrWaitDelay) {
		err = fmt.Errorf("the block exited but left a process holding its output (redirect background processes' output): %w", err)
	}
	return out.String(), took, err
}

// checkRunbookVars compares the variables the block derived from the state
// file with the test's reading of it, and requires that every such
// variable the runbook uses is set by the block.
func checkRunbookVars(t *testing.T, rb *runbook, b runbookBlock, dir, envFile string, env []string, want map[string]string) {
	t.Helper()
	raw, err := os.ReadFile(rb.path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	var names []string
	for name := range want {
		if strings.Contains(text, "$"+name) || strings.Contains(text, "${"+name+"}") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	script := fmt.Sprintf("source %q\n", envFile)
	for _, n := range names {
		script += fmt.Sprintf("printf '%%s=%%s\\n' %s \"${%s-<unset>}\"\n", n, n)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("read the variables of %s: %v\n%s", rb.name, err, out)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			got[k] = v
		}
	}
	for _, n := range names {
		if got[n] != want[n] {
			t.Errorf("%s:%d: the variables block sets %s=%q; the state file says %q", rb.path, b.line, n, got[n], want[n])
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// stopRunbookProcesses stops what the runbooks started in the background
// and left running (after a failure): every process named by a *.pid file
// in dir that is still a causeway or python process.
func stopRunbookProcesses(t *testing.T, dir string) {
	pidFiles, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	var live []int
	for _, f := range pidFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 || !runbookProcessAlive(pid) {
			continue
		}
		t.Logf("stopping %s (pid %d) left by the runbooks", filepath.Base(f), pid)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		live = append(live, pid)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range live {
		for runbookProcessAlive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if runbookProcessAlive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// runbookProcessAlive reports whether pid runs a causeway or python
// process that is not a zombie (a recycled pid is left alone).
func runbookProcessAlive(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	if !bytes.Contains(cmdline, []byte("causeway")) && !bytes.Contains(cmdline, []byte("python")) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

func runbookIndent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "    (no output)"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
