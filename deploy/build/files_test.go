package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestDeploymentFilesExist is the part of issue 10's finding 9 that needs
// no Docker engine: docker-compose.yml builds every image from
// deploy/Dockerfile, whose stages are FROM scratch (nothing to pull), and
// every file the compose file, the Dockerfile and their comments name
// exists (the Dockerfile's header named a deploy/compose.proposed.yml that
// did not). What build writes into deploy/out/ is made by `go run
// ./deploy/build`; the drills (deploy/drills, run by .ci/run) start the
// deployment itself.
func TestDeploymentFilesExist(t *testing.T) {
	root := filepath.Join("..", "..")
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	compose, dockerfile := read("docker-compose.yml"), read(filepath.Join("deploy", "Dockerfile"))

	var c struct {
		Services map[string]struct {
			Image string
			Build *struct{ Context, Dockerfile, Target string }
		}
	}
	if err := yaml.Unmarshal([]byte(compose), &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	built := map[string]bool{}
	for name, s := range c.Services {
		if s.Build == nil {
			continue
		}
		if s.Build.Context != "deploy" || s.Build.Dockerfile != "Dockerfile" {
			t.Errorf("service %s builds from %s/%s, want deploy/Dockerfile", name, s.Build.Context, s.Build.Dockerfile)
		}
		if !regexp.MustCompile(`(?m)^FROM scratch AS ` + regexp.QuoteMeta(s.Build.Target) + `$`).MatchString(dockerfile) {
			t.Errorf("service %s builds target %q, which is not a FROM scratch stage of deploy/Dockerfile", name, s.Build.Target)
		}
		built[s.Image] = true
	}
	for name, s := range c.Services {
		if !built[s.Image] {
			t.Errorf("service %s runs image %q, which no service builds: it would be pulled", name, s.Image)
		}
	}
	for _, line := range strings.Split(dockerfile, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "FROM" && f[1] != "scratch" {
			t.Errorf("deploy/Dockerfile: %q pulls an image", line)
		}
		if f := strings.Fields(line); len(f) > 2 && f[0] == "COPY" {
			src := f[len(f)-2]
			if !strings.HasPrefix(src, "out/") { // out/ is what build writes
				if _, err := os.Stat(filepath.Join(root, "deploy", src)); err != nil {
					t.Errorf("deploy/Dockerfile copies %s: %v", src, err)
				}
			}
		}
	}
	// Paths named in either file (comments included).
	for _, text := range []string{compose, dockerfile} {
		for _, p := range regexp.MustCompile(`\bdeploy/[A-Za-z0-9_./-]*[A-Za-z0-9_]`).FindAllString(text, -1) {
			if strings.HasPrefix(p, "deploy/out") {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, p)); err != nil {
				t.Errorf("%s is named but does not exist", p)
			}
		}
	}
}
