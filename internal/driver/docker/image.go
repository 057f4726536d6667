package docker

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/gantry-project/gantry/internal/driver"
)

// ensureImage makes sure the image is on the node: a local image is used
// as it is (unless force_pull), a missing one is pulled. Errors say which
// of "not in the registry", "refused", "no registry reachable" happened.
func (d *Driver) ensureImage(s *spec) error {
	if !s.ForcePull {
		ctx, cancel := d.callCtx()
		_, err := d.cli.ImageInspect(ctx, s.Image)
		cancel()
		if err == nil {
			return nil
		}
		if !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("docker daemon at %s: inspecting image %q: %w", d.Endpoint(), s.Image, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.PullTimeout)
	defer cancel()
	resp, err := d.cli.ImagePull(ctx, s.Image, client.ImagePullOptions{})
	if err == nil {
		err = resp.Wait(ctx)
		_ = resp.Close()
	}
	switch {
	case err == nil:
		d.log.Info("docker driver: pulled image", "image", s.Image)
		return nil
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%w: image %q is not on this node and its registry does not have it: %w", driver.ErrStartFailed, s.Image, err)
	case cerrdefs.IsUnauthorized(err) || cerrdefs.IsPermissionDenied(err):
		return fmt.Errorf("%w: image %q is not on this node and its registry refused the pull: %w", driver.ErrStartFailed, s.Image, err)
	case ctx.Err() != nil:
		return fmt.Errorf("%w: image %q is not on this node and pulling it took longer than %s", driver.ErrStartFailed, s.Image, d.opts.PullTimeout)
	default:
		return fmt.Errorf("%w: image %q is not on this node and no registry is reachable to pull it: %w", driver.ErrStartFailed, s.Image, err)
	}
}
