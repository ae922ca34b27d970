package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=..."; if
// empty, the module version from the build info.
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "causeway:", err)
		stop()
		os.Exit(1)
	}
}

type globalFlags struct {
	logLevel  string
	logFormat string
}

func newRoot() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "causeway",
		Short:         "Causeway joins clusters and hosts into one clusterset",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       readVersion(debug.ReadBuildInfo).Version,
	}
	root.SetVersionTemplate("causeway {{.Version}}\n")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.AddCommand(newDevCmd(g), newVersionCmd(),
		newClustersCmd(g), newExportsCmd(g), newImportsCmd(g), newStatusCmd(g), newDrainCmd(g), newUndrainCmd(g), newExplainCmd(g),
		newCertsCmd(g), newFederatorCmd(g), newGatewayCmd(g), newDNSShimCmd(g), newJoinCmd(), newEtcdCmd(g))
	return root
}

func (g *globalFlags) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", g.logFormat)
}

// versionInfo is the answer of `causeway version`.
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Time      string `json:"time"`
	Modified  bool   `json:"modified"`
	GoVersion string `json:"goVersion"`
}

// readVersion reads the version (ldflags, else the module version) and the
// VCS commit, its time and whether the tree was modified from the build info.
func readVersion(read func() (*debug.BuildInfo, bool)) versionInfo {
	v := versionInfo{Version: version}
	bi, ok := read()
	if ok {
		if v.Version == "" {
			v.Version = bi.Main.Version
		}
		v.GoVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	return v
}

// WriteTable renders one line: version, commit, time, modified.
func (v versionInfo) WriteTable(w io.Writer) error {
	line := "causeway " + v.Version
	if v.Commit != "" {
		line += ", commit " + v.Commit
		if v.Time != "" {
			line += " (" + v.Time + ")"
		}
		if v.Modified {
			line += ", modified"
		}
	}
	if v.GoVersion != "" {
		line += ", " + v.GoVersion
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, and the commit it was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printAs(cmd, output, readVersion(debug.ReadBuildInfo))
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}
