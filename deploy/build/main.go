// Command build prepares the container images' contents for
// docker-compose.yml, without pulling any image: it compiles noticerelay and
// nats-server (at the version go.mod pins) as static Linux binaries and
// writes the CA roots, all into deploy/out/ (gitignored), the build context
// of deploy/Dockerfile, whose images are FROM scratch.
//
//	go run ./deploy/build          # then: docker compose up --build
//
// The CA roots are the Mozilla (NSS) bundle of the pinned module
// golang.org/x/crypto/x509roots/fallback, written as PEM to
// deploy/out/ca-certificates.crt, where Go programs on Linux look for them.
// Roots that NSS trusts only for certificates issued before a date are left
// out: a PEM file cannot carry that constraint. So the images do not depend
// on the host's trust store, and the roots change only with go.mod.
package main

import (
	"bytes"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

func main() {
	arch := flag.String("arch", runtime.GOARCH, "GOARCH of the images (the Docker engine's architecture)")
	flag.Parse()
	if err := run(*arch); err != nil {
		fmt.Fprintf(os.Stderr, "deploy/build: %v\n", err)
		os.Exit(1)
	}
}

func run(arch string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	out := filepath.Join(root, "deploy", "out")
	// data/ is the empty directory the images give their volumes, owned
	// by the containers' non-root user (COPY --chown).
	if err := os.MkdirAll(filepath.Join(out, "data"), 0o755); err != nil {
		return err
	}
	for _, b := range []struct{ name, pkg string }{
		{"noticerelay", "."},
		{"nats-server", "github.com/nats-io/nats-server/v2"},
	} {
		fmt.Fprintf(os.Stderr, "deploy/build: building %s (linux/%s)\n", b.name, arch)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(out, b.name), b.pkg)
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build %s: %w", b.pkg, err)
		}
	}
	n, err := writeRoots(filepath.Join(out, "ca-certificates.crt"))
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "deploy/build: %d CA roots; images' contents in %s\nnext: docker compose up --build\n", n, out)
	return nil
}

// moduleRoot is the folder of the main module's go.mod.
func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(b))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run from the noticerelay checkout: go run ./deploy/build")
	}
	return filepath.Dir(mod), nil
}

// writeRoots writes the unconstrained roots of the bundle as PEM.
func writeRoots(path string) (int, error) {
	var buf bytes.Buffer
	n := 0
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}); err != nil {
			return 0, err
		}
		n++
	}
	if n == 0 {
		return 0, errors.New("no CA roots in the bundle")
	}
	return n, os.WriteFile(path, buf.Bytes(), 0o644)
}
