# gantry build and test entry points. `make dev` and `make test` are the
# README's two quick-start commands.
GO      ?= go
BIN     ?= bin/gantry
PKGS    ?= ./...
LDFLAGS ?= -s -w

.PHONY: build dev test test-short vet lint bench fuzz soak clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/gantry

# A dev cluster in one process (a server and 3 agents) with a sample job.
dev: build
	./$(BIN) dev --run-example examples/web.yaml

# The whole suite: vet and golangci-lint, then every test with the race
# detector. Tests that need real processes build the binary themselves;
# tests that need Docker or redis-server skip with a message where those
# are absent.
test: vet lint
	$(GO) test -race -timeout 40m $(PKGS)

# The peer's soak test alone (about a minute; part of `make test` too).
soak:
	$(GO) test -count=1 -run TestSoak -v ./test/soak

test-short:
	$(GO) test -short $(PKGS)

vet:
	$(GO) vet $(PKGS)

lint:
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0 run

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2x ./internal/scheduler/...

# Short fuzzing of every parser (seed corpora run in `make test` already).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./internal/jobspec
	$(GO) test -run '^$$' -fuzz FuzzReadExecFrame -fuzztime 30s ./api
	$(GO) test -run '^$$' -fuzz FuzzDNSAnswer -fuzztime 30s ./internal/agent
	$(GO) test -run '^$$' -fuzz FuzzParseDumpBody -fuzztime 30s ./internal/kv/keyspace
	$(GO) test -run '^$$' -fuzz FuzzHLL -fuzztime 30s ./internal/kv/keyspace
	$(GO) test -run '^$$' -fuzz FuzzKeySlot -fuzztime 30s ./internal/kv/keyspace
	$(GO) test -run '^$$' -fuzz FuzzParseStreamID -fuzztime 30s ./internal/kv/command
	$(GO) test -run '^$$' -fuzz FuzzBitfield -fuzztime 30s ./internal/kv/command
	$(GO) test -run '^$$' -fuzz FuzzCheckInert -fuzztime 30s ./internal/kv
	$(GO) test -run '^$$' -fuzz FuzzAppendString -fuzztime 30s ./internal/stream
	$(GO) test -run '^$$' -fuzz FuzzReadEventLine -fuzztime 30s ./internal/bench
	$(GO) test -run '^$$' -fuzz FuzzLogReader -fuzztime 30s ./internal/kv/aof
	$(GO) test -run '^$$' -fuzz FuzzPSyncReply -fuzztime 30s ./internal/kv/repl
	$(GO) test -run '^$$' -fuzz 'FuzzDecode$$' -fuzztime 30s ./internal/peerexec
	$(GO) test -run '^$$' -fuzz FuzzDecodeBatch -fuzztime 30s ./internal/peerexec
	$(GO) test -run '^$$' -fuzz FuzzReadFrame -fuzztime 30s ./internal/peerexec
	$(GO) test -run '^$$' -fuzz FuzzRecordLog -fuzztime 30s ./internal/peerexec
	$(GO) test -run '^$$' -fuzz FuzzDecodeBinaryBatch -fuzztime 30s ./internal/peerexec
	$(GO) test -run '^$$' -fuzz FuzzDecodeWire -fuzztime 30s ./internal/peer
	$(GO) test -run '^$$' -fuzz FuzzReplyToLua -fuzztime 30s ./internal/kv/script
	$(GO) test -run '^$$' -fuzz FuzzDecoders -fuzztime 30s ./internal/kv/script
	$(GO) test -run '^$$' -fuzz FuzzBacklog -fuzztime 30s ./internal/kv/repl
	$(GO) test -run '^$$' -fuzz FuzzSetUser -fuzztime 30s ./internal/kv/acl
	$(GO) test -run '^$$' -fuzz FuzzParseFile -fuzztime 30s ./internal/kv/acl
	$(GO) test -run '^$$' -fuzz FuzzRestoreBackup -fuzztime 30s ./internal/state
	$(GO) test -run '^$$' -fuzz FuzzParsePolicy -fuzztime 30s ./internal/acl
	$(GO) test -run '^$$' -fuzz FuzzDecodeFrameworkCall -fuzztime 30s ./internal/structs
	$(GO) test -run '^$$' -fuzz FuzzPeriodicSchedule -fuzztime 30s ./internal/structs
	$(GO) test -run '^$$' -fuzz FuzzCheckDispatch -fuzztime 30s ./internal/structs
	$(GO) test -run '^$$' -fuzz FuzzParseMeta -fuzztime 30s ./internal/cli

clean:
	rm -rf bin
