package server

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/internal/acl"
	"github.com/gantry-project/gantry/internal/state"
	"github.com/gantry-project/gantry/internal/structs"
)

// Bounds on what management tokens may create (every count a client can
// grow is bounded).
const (
	maxACLPolicies = 1000
	maxACLTokens   = 100_000
)

// BootstrapResetFile is the file in the leader's data dir that allows one
// more ACL bootstrap: it holds the reset index a refused bootstrap names
// (Nomad's procedure; docs/operations.md, "Resetting the bootstrap").
const BootstrapResetFile = "acl-bootstrap-reset"

// aclEnabled refuses the ACL endpoints of a server without ACLs.
func (s *Server) aclEnabled() error {
	if !s.cfg.ACL.Enabled {
		return badRequest("ACL support is disabled on this server: start every server with --acl-enabled (acl.enabled) to use tokens and policies")
	}
	return nil
}

// newToken makes a token with fresh random IDs (crypto/rand) and returns
// it with its secret's hash set, and the secret.
func (s *Server) newToken(name, typ string, policies []string) (*structs.ACLToken, string, error) {
	accessor, err := acl.NewID(s.aclRand)
	if err != nil {
		return nil, "", err
	}
	secret, err := acl.NewID(s.aclRand)
	if err != nil {
		return nil, "", err
	}
	return &structs.ACLToken{
		AccessorID: accessor, SecretHash: acl.HashSecret(secret), Name: name, Type: typ,
		Policies: policies, CreateTime: s.now().UnixNano(),
	}, secret, nil
}

// readBootstrapReset returns the reset index the operator wrote to the
// reset file (0 if there is none) and the file's path.
func (s *Server) readBootstrapReset() (uint64, string, error) {
	path := filepath.Join(s.cfg.DataDir, BootstrapResetFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, path, nil
	}
	if err != nil {
		return 0, path, fmt.Errorf("reading %s: %w", path, err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, path, badRequest("%s must hold the reset index a refused bootstrap named (got %q)", path, strings.TrimSpace(string(b)))
	}
	return v, path, nil
}

func (s *Server) aclBootstrap(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := s.aclEnabled(); err != nil {
		return nil, err
	}
	reset, resetPath, err := s.readBootstrapReset()
	if err != nil {
		return nil, err
	}
	tok, secret, err := s.newToken("Bootstrap Token", structs.ACLManagementToken, nil)
	if err != nil {
		return nil, err
	}
	tok.Bootstrap = true
	_, _, err = s.raftApply(structs.ACLBootstrapRequestType, &structs.ACLBootstrapRequest{Token: tok, ResetIndex: reset})
	var be *state.ACLBootstrapError
	if errors.As(err, &be) {
		return nil, badRequest("%v; to bootstrap again, write %d to %s on the leader and retry", be, be.ResetIndex, resetPath)
	}
	if err != nil {
		return nil, err
	}
	if reset != 0 {
		// Used: the next bootstrap needs the new index.
		_ = os.Remove(resetPath)
	}
	s.logger.Info("ACL bootstrap: a management token was created", "accessor", tok.AccessorID)
	out := tok.Public()
	out.SecretID = secret
	return out, nil
}

func (s *Server) aclPolicyList(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := s.aclEnabled(); err != nil {
		return nil, err
	}
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		out := snap.ACLPolicies(ws)
		if out == nil {
			out = []*structs.ACLPolicy{}
		}
		return snap.TableIndex(state.TableACLPolicies), out, nil
	})
}

func (s *Server) aclPolicyGet(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := s.aclEnabled(); err != nil {
		return nil, err
	}
	name := r.PathValue("name")
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		p := snap.ACLPolicy(ws, name)
		if p == nil {
			return 0, nil, notFound("ACL policy %q not found", name)
		}
		return snap.TableIndex(state.TableACLPolicies), p, nil
	})
}

func (s *Server) aclPolicyApply(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := s.aclEnabled(); err != nil {
		return nil, err
	}
	var p structs.ACLPolicy
	if err := decodeBody(w, r, &p); err != nil {
		return nil, err
	}
	name := r.PathValue("name")
	if p.Name != "" && p.Name != name {
		return nil, badRequest("name: the body names policy %q but the path %q", p.Name, name)
	}
	p.Name = name
	if err := structs.ValidatePolicyName(name); err != nil {
		return nil, badRequest("%v", err)
	}
	if len(p.Description) > structs.MaxDescriptionLen {
		return nil, badRequest("description: must be at most %d bytes", structs.MaxDescriptionLen)
	}
	if _, err := acl.Parse(p.Rules); err != nil {
		return nil, &httpError{code: http.StatusBadRequest, msg: fmt.Sprintf("invalid policy %s: %v", name, err),
			fields: []structs.FieldError{{Field: "rules", Rule: err.Error()}}}
	}
	snap := s.state.Snapshot()
	if snap.ACLPolicy(nil, name) == nil && len(snap.ACLPolicies(nil)) >= maxACLPolicies {
		return nil, badRequest("the cluster already has %d ACL policies, the most allowed", maxACLPolicies)
	}
	p.CreateIndex, p.ModifyIndex = 0, 0
	index, _, err := s.raftApply(structs.ACLPolicyUpsertRequestType, &structs.ACLPolicyUpsertRequest{Policies: []*structs.ACLPolicy{&p}})
	if err != nil {
		return nil, err
	}
	return &api.IndexResponse{Index: index}, nil
}

func (s *Server) aclPolicyDelete(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := s.aclEnabled(); err != nil {
		return nil, err
	}
	name := r.PathValue("name")
	if s.state.Snapshot().ACLPolicy(nil, name) == nil {
		return nil, s.verifiedNotFound("ACL policy %q not found", name)
	}
	index, _, err := s.raftApply(structs.ACLPolicyDeleteRequestType, &structs.ACLPolicyDeleteRequest{Names: []string{name}})
	if err != nil {
		return nil, err
	}
	return &api.IndexResponse{Index: index}, nil
}

func (s *Server) aclTokenList(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := s.aclEnabled(); err != nil {
		return nil, err
	}
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		out := []*structs.ACLToken{}
		for _, t := range snap.ACLTokens(ws) {
			out = append(out, t.Public())
		}
		return snap.TableIndex(state.TableACLTokens), out, nil
	})
}

func (s *Server) aclTokenCreate(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := s.aclEnabled(); err != nil {
		return nil, err
	}
	var req api.ACLTokenCreateRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if req.Type == "" {
		req.Type = structs.ACLClientToken
	}
	var fields []structs.FieldError
	bad := func(field, format string, args ...any) {
		fields = append(fields, structs.FieldError{Field: field, Rule: fmt.Sprintf(format, args...)})
	}
	snap := s.state.Snapshot()
	switch req.Type {
	case structs.ACLClientToken:
		if len(req.Policies) == 0 {
			bad("policies", "a client token needs at least one policy")
		}
	case structs.ACLManagementToken:
		if len(req.Policies) > 0 {
			bad("policies", "a management token is allowed everything and takes no policies")
		}
	default:
		bad("type", "must be %q or %q (got %q)", structs.ACLClientToken, structs.ACLManagementToken, req.Type)
	}
	if len(req.Name) > structs.MaxTokenNameLen {
		bad("name", "must be at most %d bytes", structs.MaxTokenNameLen)
	}
	if len(req.Policies) > structs.MaxPoliciesPerToken {
		bad("policies", "at most %d are allowed (got %d)", structs.MaxPoliciesPerToken, len(req.Policies))
	} else {
		for _, p := range req.Policies {
			if snap.ACLPolicy(nil, p) == nil {
				bad("policies", "policy %q does not exist (gantry acl policy apply)", p)
			}
		}
	}
	if len(fields) > 0 {
		return nil, &httpError{code: http.StatusBadRequest, msg: "invalid token: " + fields[0].Error(), fields: fields}
	}
	if len(snap.ACLTokens(nil)) >= maxACLTokens {
		return nil, badRequest("the cluster already has %d ACL tokens, the most allowed; delete unused ones", maxACLTokens)
	}
	tok, secret, err := s.newToken(req.Name, req.Type, req.Policies)
	if err != nil {
		return nil, err
	}
	index, _, err := s.raftApply(structs.ACLTokenUpsertRequestType, &structs.ACLTokenUpsertRequest{Tokens: []*structs.ACLToken{tok}})
	if err != nil {
		return nil, err
	}
	out := tok.Public()
	out.SecretID = secret
	out.CreateIndex, out.ModifyIndex = index, index
	return out, nil
}

func (s *Server) aclTokenSelf(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := s.aclEnabled(); err != nil {
		return nil, err
	}
	id := identityOf(r)
	if id == nil || id.token == nil {
		return nil, unauthorized("no token was given")
	}
	return id.token.Public(), nil
}

func (s *Server) aclTokenGet(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := s.aclEnabled(); err != nil {
		return nil, err
	}
	accessor := r.PathValue("accessor")
	return s.blocking(w, r, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, any, error) {
		t := snap.ACLToken(ws, accessor)
		if t == nil {
			return 0, nil, notFound("ACL token with accessor %q not found", accessor)
		}
		return snap.TableIndex(state.TableACLTokens), t.Public(), nil
	})
}

func (s *Server) aclTokenDelete(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := s.aclEnabled(); err != nil {
		return nil, err
	}
	accessor := r.PathValue("accessor")
	if s.state.Snapshot().ACLToken(nil, accessor) == nil {
		return nil, s.verifiedNotFound("ACL token with accessor %q not found", accessor)
	}
	index, _, err := s.raftApply(structs.ACLTokenDeleteRequestType, &structs.ACLTokenDeleteRequest{AccessorIDs: []string{accessor}})
	if err != nil {
		return nil, err
	}
	return &api.IndexResponse{Index: index}, nil
}
