package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/acl"
)

// ACLBootstrap makes the cluster's first management token and prints it,
// secret included (shown this once).
func (e *Env) ACLBootstrap(ctx context.Context) error {
	tok, err := e.Client.ACLBootstrap(ctx)
	if err != nil {
		return fmt.Errorf("acl bootstrap: %w", e.Humanize(err))
	}
	return e.printToken(tok)
}

// printToken prints a token; its secret only when the answer holds it.
func (e *Env) printToken(t *api.ACLToken) error {
	if ok, err := e.printData(t); ok {
		return err
	}
	k := &kv{}
	k.add("Accessor ID", t.AccessorID)
	if t.SecretID != "" {
		k.add("Secret ID", t.SecretID)
	}
	k.add("Name", orDash(t.Name))
	k.add("Type", t.Type)
	k.add("Policies", orDash(strings.Join(t.Policies, ", ")))
	k.add("Created", timestamp(e.Now(), t.CreateTime))
	if err := k.write(e.Out); err != nil {
		return err
	}
	if t.SecretID != "" {
		_, err := fmt.Fprintln(e.Out, "\nThe secret is shown this once; the servers keep only its hash. Use it as GANTRY_TOKEN or --token.")
		return err
	}
	return nil
}

// ReadPolicyFile reads a policy document from path ("-" for stdin) and
// checks it locally, so a mistake is shown with its line before any
// request.
func ReadPolicyFile(path string, stdin io.Reader) (string, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return "", fmt.Errorf("policy file: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, acl.MaxPolicyBytes+1))
	if err != nil {
		return "", fmt.Errorf("policy file %s: %w", path, err)
	}
	if len(b) > acl.MaxPolicyBytes {
		return "", fmt.Errorf("policy file %s: larger than %d bytes", path, acl.MaxPolicyBytes)
	}
	if _, err := acl.Parse(string(b)); err != nil {
		return "", fmt.Errorf("policy file %s: %w", path, err)
	}
	return string(b), nil
}

// ACLPolicyApply creates or replaces a policy.
func (e *Env) ACLPolicyApply(ctx context.Context, name, description, rules string) error {
	resp, err := e.Client.ApplyACLPolicy(ctx, &api.ACLPolicy{Name: name, Description: description, Rules: rules})
	if err != nil {
		return fmt.Errorf("acl policy apply %s: %w", name, e.Humanize(err))
	}
	if ok, err := e.printData(resp); ok {
		return err
	}
	_, err = fmt.Fprintf(e.Out, "ACL policy %s applied at index %d\n", name, resp.Index)
	return err
}

// ACLPolicyList lists the policies.
func (e *Env) ACLPolicyList(ctx context.Context) error {
	ps, err := e.Client.ACLPolicies(ctx)
	if err != nil {
		return fmt.Errorf("acl policy list: %w", e.Humanize(err))
	}
	if ok, err := e.printData(ps); ok {
		return err
	}
	if len(ps) == 0 {
		_, err := fmt.Fprintln(e.Out, "No ACL policies")
		return err
	}
	t := newTable("NAME", "DESCRIPTION", "MODIFY INDEX")
	for _, p := range ps {
		t.row(p.Name, orDash(p.Description), p.ModifyIndex)
	}
	return t.write(e.Out)
}

// ACLPolicyInfo prints one policy with its rules.
func (e *Env) ACLPolicyInfo(ctx context.Context, name string) error {
	p, err := e.Client.ACLPolicy(ctx, name)
	if err != nil {
		return fmt.Errorf("acl policy %s: %w", name, e.Humanize(err))
	}
	if ok, err := e.printData(p); ok {
		return err
	}
	k := &kv{}
	k.add("Name", p.Name)
	k.add("Description", orDash(p.Description))
	k.add("Modify Index", p.ModifyIndex)
	if err := k.write(e.Out); err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.Out, "\nRules\n%s\n", strings.TrimRight(p.Rules, "\n"))
	return err
}

// ACLPolicyDelete deletes a policy.
func (e *Env) ACLPolicyDelete(ctx context.Context, name string) error {
	resp, err := e.Client.DeleteACLPolicy(ctx, name)
	if err != nil {
		return fmt.Errorf("acl policy delete %s: %w", name, e.Humanize(err))
	}
	if ok, err := e.printData(resp); ok {
		return err
	}
	_, err = fmt.Fprintf(e.Out, "ACL policy %s deleted at index %d\n", name, resp.Index)
	return err
}

// TokenCreateOptions are the flags of `acl token create`.
type TokenCreateOptions struct {
	Name     string
	Type     string
	Policies []string
}

// ACLTokenCreate makes a token and prints it, secret included.
func (e *Env) ACLTokenCreate(ctx context.Context, o TokenCreateOptions) error {
	tok, err := e.Client.CreateACLToken(ctx, &api.ACLTokenCreateRequest{Name: o.Name, Type: o.Type, Policies: o.Policies})
	if err != nil {
		return fmt.Errorf("acl token create: %w", e.Humanize(err))
	}
	return e.printToken(tok)
}

// ACLTokenList lists the tokens (without secrets).
func (e *Env) ACLTokenList(ctx context.Context) error {
	ts, err := e.Client.ACLTokens(ctx)
	if err != nil {
		return fmt.Errorf("acl token list: %w", e.Humanize(err))
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].CreateIndex < ts[j].CreateIndex })
	if ok, err := e.printData(ts); ok {
		return err
	}
	if len(ts) == 0 {
		_, err := fmt.Fprintln(e.Out, "No ACL tokens")
		return err
	}
	t := newTable("ACCESSOR ID", "NAME", "TYPE", "POLICIES", "CREATED")
	for _, tok := range ts {
		t.row(tok.AccessorID, orDash(tok.Name), tok.Type, orDash(strings.Join(tok.Policies, ",")), age(e.Now(), tok.CreateTime))
	}
	return t.write(e.Out)
}

// ACLTokenInfo prints a token by accessor ID.
func (e *Env) ACLTokenInfo(ctx context.Context, accessor string) error {
	tok, err := e.Client.ACLToken(ctx, accessor)
	if err != nil {
		return fmt.Errorf("acl token %s: %w", accessor, e.Humanize(err))
	}
	return e.printToken(tok)
}

// ACLTokenSelf prints the token the CLI presents.
func (e *Env) ACLTokenSelf(ctx context.Context) error {
	tok, err := e.Client.ACLTokenSelf(ctx)
	if err != nil {
		return fmt.Errorf("acl token self: %w", e.Humanize(err))
	}
	return e.printToken(tok)
}

// ACLTokenDelete deletes a token by accessor ID.
func (e *Env) ACLTokenDelete(ctx context.Context, accessor string) error {
	resp, err := e.Client.DeleteACLToken(ctx, accessor)
	if err != nil {
		return fmt.Errorf("acl token delete %s: %w", accessor, e.Humanize(err))
	}
	if ok, err := e.printData(resp); ok {
		return err
	}
	_, err = fmt.Fprintf(e.Out, "ACL token %s deleted at index %d\n", accessor, resp.Index)
	return err
}
