// Package dockertest gives tests a Docker daemon and a small image without
// a registry: FROM scratch with a statically linked busybox (Debian's
// busybox-static package) and a symlink per applet, built locally and
// tagged uniquely per test run. Tests skip, saying why, where either is
// missing.
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// BusyboxPath is where Debian's busybox-static installs the binary.
const BusyboxPath = "/bin/busybox"

// LabelTest marks images and containers made by tests.
const LabelTest = "gantry.test"

// Client returns a client of the local daemon, or skips the test with the
// reason when none answers.
func Client(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Skipf("docker tests skipped: no Docker client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		_ = cli.Close()
		t.Skipf("docker tests skipped: no Docker daemon answers at %s: %v", cli.DaemonHost(), err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// Image builds the busybox test image, removed when the test ends, and
// returns its tag. It skips the test when Docker or a static busybox is
// missing (apt-get install busybox-static).
func Image(t testing.TB, cli *client.Client) string {
	t.Helper()
	if err := staticBusybox(); err != nil {
		t.Skipf("docker tests skipped: %v (apt-get install busybox-static)", err)
	}
	tag, err := Build(context.Background(), cli)
	if err != nil {
		t.Fatalf("building the test image: %v", err)
	}
	t.Cleanup(func() { _ = Remove(cli, tag) })
	return tag
}

// staticBusybox reports why BusyboxPath cannot run in a FROM scratch
// image: missing, or dynamically linked (it would need a libc there).
func staticBusybox() error {
	f, err := elf.Open(BusyboxPath)
	if err != nil {
		return fmt.Errorf("no busybox at %s: %w", BusyboxPath, err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", BusyboxPath)
		}
	}
	return nil
}

// Build builds the image and returns its unique tag.
func Build(ctx context.Context, cli *client.Client) (string, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return "", err
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return "", fmt.Errorf("%s --list: %w", BusyboxPath, err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dockerfile := "FROM scratch\nCOPY bin /bin\nENV PATH=/bin\nCMD [\"/bin/sh\"]\n"
	files := []struct {
		name, link string
		data       []byte
		mode       int64
	}{
		{name: "Dockerfile", data: []byte(dockerfile), mode: 0o644},
		{name: "bin/busybox", data: bin, mode: 0o755},
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet != "busybox" && !strings.Contains(applet, "/") {
			files = append(files, struct {
				name, link string
				data       []byte
				mode       int64
			}{name: "bin/" + applet, link: "busybox", mode: 0o777})
		}
	}
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		if f.link != "" {
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, f.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	tag := "gantry-test-busybox:" + hex.EncodeToString(id[:])
	// A label of its own makes the image's ID unique too: two test
	// binaries building at once must not share an image, or removing one's
	// (with the containers on it) would remove the other's.
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{tag}, Remove: true,
		ForceRemove: true, NoCache: true, Labels: map[string]string{LabelTest: tag}})
	if err != nil {
		return "", fmt.Errorf("docker build: %w", err)
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", fmt.Errorf("docker build output: %w", err)
		}
		if msg.Error != "" {
			return "", fmt.Errorf("docker build: %s", msg.Error)
		}
	}
	return tag, nil
}

// Remove removes the image (and the containers tests left on it).
func Remove(cli *client.Client, tag string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("ancestor", tag)})
	if err == nil {
		for _, c := range list.Items {
			_, _ = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		}
	}
	_, err = cli.ImageRemove(ctx, tag, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	return err
}
