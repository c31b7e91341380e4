# llqt — build, test, demo, benchmarks, fuzzing, lint.
GO        ?= go
BIN       := bin/llqt
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
DEMO      := demo
TESTDATA  ?= $(or $(LLQT_TESTDATA),../shared/testdata)
FUZZTIME  ?= 30s
# Packages with goroutines, run under the race detector by `make test`.
RACE_PKGS := ./formats/... ./quant/... ./kernels/... ./eval/... ./perplexity/... ./internal/atomicfile/...

.PHONY: all build test test-unit test-race test-purego test-report demo demo-real bench fuzz lint clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/llqt

# The README's test command: lint, every test, the kernels' pure-Go path,
# and the race detector on the concurrent packages.
test: lint test-unit test-purego test-race test-report

test-unit:
	$(GO) test -count=1 -timeout 20m ./...

test-purego:
	$(GO) test -count=1 -tags purego ./kernels/...

test-race:
	$(GO) test -count=1 -race -short -timeout 20m $(RACE_PKGS)

# The size/accuracy/speed report on the real tiny Llama, shown in the log,
# when ../shared/testdata is present (CI always has it).
test-report: build
	@if [ -d "$(TESTDATA)/tiny-llama-hf" ]; then \
	  out=$$(mktemp -d) && \
	  $(BIN) report $(TESTDATA)/tiny-llama-hf --types f32,q8_0,q6_k,q4_k_m,q4_0,q2_k \
	    -f $(TESTDATA)/text/tinystories_eval.txt -c 256 --out $$out && \
	  cat $$out/report.md && rm -rf $$out; \
	else echo "test-report: skipped, no $(TESTDATA)/tiny-llama-hf (set LLQT_TESTDATA)"; fi

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needs to run on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@# The amd64 kernels (AMX asks Linux for its state) and the file readers
	@# (mmap) on the other systems users run: they must still build there.
	GOOS=windows GOARCH=amd64 $(GO) vet ./kernels/... ./formats/...
	GOOS=darwin GOARCH=amd64 $(GO) vet ./kernels/... ./formats/...

# The main job on a model the demo writes itself: a synthetic, random-weight
# Hugging Face Llama checkpoint → GGUF → quantized variants → perplexity and
# size/speed report. Random weights make the perplexity figures meaningless
# as quality claims; what the demo shows is the pipeline and relative costs.
demo: build
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(GO) run ./internal/synth/cmd/synthllama -shape demo -out $(DEMO)/hf
	$(BIN) convert $(DEMO)/hf $(DEMO)/model-f32.gguf --outtype f32
	$(BIN) quantize $(DEMO)/model-f32.gguf $(DEMO)/model-Q4_K_M.gguf Q4_K_M
	$(BIN) eval perplexity $(DEMO)/model-Q4_K_M.gguf -f docs/demo.txt -c 128
	$(BIN) report $(DEMO)/hf --types f32,q8_0,q4_k_m,q2_k -f docs/demo.txt -c 128 --out $(DEMO)/report
	@echo; cat $(DEMO)/report/report.md

# The same on the real trained tiny Llama from ../shared/testdata.
demo-real: build
	rm -rf $(DEMO)/real && mkdir -p $(DEMO)/real
	$(BIN) report $(TESTDATA)/tiny-llama-hf --types f32,q8_0,q6_k,q4_k_m,q4_0,q2_k \
		-f $(TESTDATA)/text/tinystories_eval.txt -c 256 --out $(DEMO)/real
	@echo; cat $(DEMO)/real/report.md

bench:
	$(GO) test -run '^$$' -bench . -benchtime 200ms ./kernels/... ./quant/... ./formats/... ./eval/...

# Runs every fuzz target for FUZZTIME each (go test -fuzz takes one target at a time).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$t ($(FUZZTIME))"; \
	    $(GO) test $$pkg -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || exit 1; \
	  done; \
	done

clean:
	rm -rf bin $(DEMO)
