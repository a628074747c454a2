package deploy_test

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the binaries (make docs)")

const referenceHeader = `# Configuration reference

Generated from the binaries by ` + "`make docs`" + ` (their ` + "`config-reference`" + ` subcommand); ` + "`make test`" + `
fails when this file and the code disagree. Every flag also reads the environment variable shown;
a flag beats its variable, a variable beats the default, and a variable with the service's prefix
that names no flag stops the service at start.
`

// The configuration reference is generated from the flag definitions, so it
// cannot drift from them.
func TestConfigurationReference(t *testing.T) {
	bins := build(t)
	var want bytes.Buffer
	want.WriteString(referenceHeader)
	for _, name := range []string{"authsvc", "predictsvc"} {
		out, err := exec.Command(bins[name], "config-reference").Output()
		if err != nil {
			t.Fatalf("%s config-reference: %v", name, err)
		}
		want.WriteString("\n## " + name + "\n\n")
		want.Write(out)
	}
	path := filepath.Join(repoRoot(), "docs", "configuration.md")
	if *update {
		if err := os.WriteFile(path, want.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatal("docs/configuration.md is stale: run `make docs` and commit it")
	}
}
