package multicluster

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// runbook is one docs/runbooks/*.md file: its shell blocks, in order.
type runbook struct {
	name   string // file name, e.g. "failover.md"
	path   string
	blocks []runbookBlock
}

// runbookBlock is one ```sh fenced block of a runbook.
type runbookBlock struct {
	line      int    // line of the opening fence, 1-based
	text      string // the commands
	directive string // from a preceding <!-- runbook-test: DIRECTIVE --> line, or ""
}

// runbookDirectives are what a `<!-- runbook-test: X -->` comment may say
// about the next shell block:
//   - variables: the block sets the runbook's variables; the test checks the
//     values derived from the state file against its own reading of it;
//   - etcd-down / etcd-up: before the block, the test cuts / restores the
//     relay between the added cluster's federator and the federation etcd
//     (the rehearsal of etcd-outage.md).
var runbookDirectives = []string{"variables", "etcd-down", "etcd-up"}

var (
	directiveRE = regexp.MustCompile(`^<!--\s*runbook-test:\s*([a-z-]+)\s*-->\s*$`)
	fenceRE     = regexp.MustCompile("^(```+|~~~+)\\s*([A-Za-z0-9_+-]*)")
)

// untestedShells are fence languages that would look like shell to a
// reader but would not be executed: a runbook must use ```sh.
var untestedShells = []string{"bash", "shell", "console", "zsh", "shellsession"}

// parseRunbook reads the shell blocks of a Markdown file. It refuses
// shell-looking blocks of another language, unknown directives and
// directives that are not followed by a shell block.
// Over 80 lines: one pass over the lines whose states (fences, markers) share the loop.
func parseRunbook(path string) (*runbook, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rb := &runbook{name: filepath.Base(path), path: path}
	var (
		sc        = bufio.NewScanner(f)
		n         int
		fence     string // closing fence while inside a block
		inShell   bool
		cur       runbookBlock
		body      []string
		directive string
		dirLine   int
	)
	// orphan is the error for a directive no sh block follows.
	orphan := func() error {
		return fmt.Errorf("%s:%d: directive %q not followed by a sh block", path, dirLine, directive)
	}
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
				if inShell {
					cur.text = strings.Join(body, "\n") + "\n"
					rb.blocks = append(rb.blocks, cur)
				}
				fence, inShell, body = "", false, nil
				continue
			}
			if inShell {
				body = append(body, line)
			}
			continue
		}
		if m := directiveRE.FindStringSubmatch(trimmed); m != nil {
			if !slices.Contains(runbookDirectives, m[1]) {
				return nil, fmt.Errorf("%s:%d: unknown directive %q (want one of %v)", path, n, m[1], runbookDirectives)
			}
			if directive != "" {
				return nil, orphan()
			}
			directive, dirLine = m[1], n
			continue
		}
		if strings.HasPrefix(trimmed, "<!--") && strings.Contains(trimmed, "runbook-test") {
			return nil, fmt.Errorf("%s:%d: malformed runbook-test directive: %s", path, n, line)
		}
		m := fenceRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		fence = m[1]
		lang := strings.ToLower(m[2])
		if slices.Contains(untestedShells, lang) {
			return nil, fmt.Errorf("%s:%d: a ```%s block would not be executed by the runbook test; use ```sh (or ```text for output)", path, n, lang)
		}
		if lang == "sh" {
			inShell = true
			cur = runbookBlock{line: n, directive: directive}
			directive = ""
		} else if directive != "" {
			return nil, orphan()
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if fence != "" {
		return nil, fmt.Errorf("%s: unterminated code block", path)
	}
	if directive != "" {
		return nil, orphan()
	}
	return rb, nil
}
