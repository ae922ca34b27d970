package main

import (
	"bytes"
	"encoding/json"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadVersion(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.24.0", Main: debug.Module{Version: "v0.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "bdfa6e3"}, {Key: "vcs.time", Value: "2026-12-05T09:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	tests := []struct {
		name, ldflags string
		bi            *debug.BuildInfo
		want          versionInfo
		line          string
	}{
		{name: "build info", bi: bi,
			want: versionInfo{Version: "v0.4.0", Commit: "bdfa6e3", Time: "2026-12-05T09:00:00Z", Modified: true, GoVersion: "go1.24.0"},
			line: "causeway v0.4.0, commit bdfa6e3 (2026-12-05T09:00:00Z), modified, go1.24.0\n"},
		{name: "ldflags win", ldflags: "1.2.3", bi: bi,
			want: versionInfo{Version: "1.2.3", Commit: "bdfa6e3", Time: "2026-12-05T09:00:00Z", Modified: true, GoVersion: "go1.24.0"}},
		{name: "no build info", want: versionInfo{Version: "(devel)"}, line: "causeway (devel)\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := version
			version = tc.ldflags
			t.Cleanup(func() { version = old })
			got := readVersion(func() (*debug.BuildInfo, bool) { return tc.bi, tc.bi != nil })
			require.Equal(t, tc.want, got)
			if tc.line != "" {
				var b bytes.Buffer
				require.NoError(t, got.WriteTable(&b))
				require.Equal(t, tc.line, b.String())
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	run := func(args ...string) string {
		cmd := newRoot()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs(args)
		require.NoError(t, cmd.Execute())
		return out.String()
	}
	require.Regexp(t, `^causeway \S+`, run("version"))
	require.Regexp(t, `^causeway \S+\n$`, run("--version"))
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(run("version", "-o", "json")), &v))
	for _, k := range []string{"version", "commit", "time", "modified", "goVersion"} {
		require.Contains(t, v, k)
	}
	require.NotEqual(t, "dev", v["version"])
}
