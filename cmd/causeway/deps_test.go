package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is this module's import path; the rules below are about its
// packages.
const module = "github.com/causeway-mesh/causeway"

// listedPackage is the part of `go list -json` output the dependency rules
// read.
type listedPackage struct {
	ImportPath   string
	Imports      []string
	Deps         []string
	TestImports  []string
	XTestImports []string
}

// goList runs `go list -json args...` at the module root and decodes the
// packages it prints.
func goList(t *testing.T, args ...string) []listedPackage {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("no go command to list packages with: %v", err)
	}
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list %v listed no packages", args)
	}
	return pkgs
}

// within reports whether path is one of the module's packages dirs names
// (the package itself or one below it).
func within(path string, dirs ...string) bool {
	for _, d := range dirs {
		p := module + "/" + d
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// layerRule says that no package under From may depend (directly or
// through others) on a package under Forbidden.
type layerRule struct {
	name      string
	from      []string
	forbidden []string
	// known are violations that exist today and have an owner, as
	// "importer -> imported"; the test fails once one is gone, so the
	// list only shrinks.
	known map[string]string
}

var layerRules = []layerRule{
	{
		name:      "the data plane and the catalog do not depend on the federator",
		from:      []string{"gateway", "dnsshim", "catalog"},
		forbidden: []string{"federator"},
	},
	{
		name:      "certs is a leaf library",
		from:      []string{"certs"},
		forbidden: []string{"gateway", "federator", "dnsshim", "catalog", "internal/app", "cmd"},
	},
	{
		name:      "components do not depend on the wiring or the operator verbs",
		from:      []string{"api", "federator", "gateway", "dnsshim", "catalog", "certs"},
		forbidden: []string{"internal/app"},
	},
	{
		name: "leaf helpers depend on no other package of the module",
		from: []string{"internal/lib"},
		forbidden: []string{"api", "federator", "gateway", "dnsshim", "catalog", "certs", "internal/app",
			"internal/testenv", "cmd", "bench", "multicluster-tests"},
	},
}

// testOnly are the packages of test harnesses: they may import testing,
// and only tests may import them.
var testOnly = []string{"internal/testenv"}

// TestDeps asserts the layering of the module's packages: which packages
// may depend on which (like Tailscale's TestDeps).
func TestDeps(t *testing.T) {
	pkgs := goList(t, "./...")
	for _, r := range layerRules {
		t.Run(r.name, func(t *testing.T) {
			seen := map[string]bool{}
			for _, p := range pkgs {
				if !within(p.ImportPath, r.from...) {
					continue
				}
				for _, d := range p.Deps {
					if !within(d, r.forbidden...) {
						continue
					}
					v := p.ImportPath + " -> " + d
					if why, ok := r.known[v]; ok {
						seen[v] = true
						t.Logf("known violation %s (%s)", v, why)
						continue
					}
					t.Errorf("%s depends on %s", p.ImportPath, d)
				}
			}
			for v := range r.known {
				if !seen[v] {
					t.Errorf("known violation %s is gone: remove it from the rule", v)
				}
			}
		})
	}
	t.Run("only tests import test code", func(t *testing.T) {
		for _, p := range pkgs {
			if within(p.ImportPath, testOnly...) {
				continue
			}
			for _, imp := range p.Imports {
				if imp == "testing" || strings.HasPrefix(imp, "testing/") || within(imp, testOnly...) {
					t.Errorf("%s imports %s outside its tests; move the code needing it under internal/testenv", p.ImportPath, imp)
				}
			}
		}
	})
	t.Run("no package imports cmd", func(t *testing.T) {
		for _, p := range pkgs {
			if within(p.ImportPath, "cmd") {
				continue
			}
			for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
				if within(imp, "cmd") {
					t.Errorf("%s imports %s", p.ImportPath, imp)
				}
			}
		}
	})
}

// TestDepsNoTesting asserts that the causeway binary links no test code:
// neither the testing package nor anything built on it.
func TestDepsNoTesting(t *testing.T) {
	pkgs := goList(t, "-deps", "./cmd/causeway")
	for _, p := range pkgs {
		for _, imp := range p.Imports {
			if imp == "testing" || strings.HasPrefix(imp, "testing/") {
				t.Errorf("%s imports %s, so the binary links test code", p.ImportPath, imp)
			}
		}
	}
}
