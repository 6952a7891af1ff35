# Phalanx — the two commands: `make demo` and `make test`.
# Both install the missing system packages first (as root with apt-get; otherwise they print
# the exact command to run and stop).

APT_PACKAGES := libopenmpi-dev openmpi-bin libopenblas-dev libxxhash-dev pkg-config etcd-server etcd-client slurm-wlm munge psmisc prometheus librsvg2-bin
SWIFT ?= swift
BIN := .build/release

.PHONY: deps build test demo bench clean

deps:
	@command -v $(SWIFT) >/dev/null 2>&1 || { echo "error: the Swift toolchain (swift 6.x) is not on PATH: install it from swift.org first" >&2; exit 1; }
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "missing system packages:$$missing" >&2; \
	    echo "run as root:  apt-get update && apt-get install -y$$missing" >&2; exit 1; \
	  fi; \
	fi

	@python3 -c 'import safetensors, numpy' 2>/dev/null || { \
	  if [ "$$(id -u)" = "0" ]; then echo "installing Python safetensors and numpy (checkpoint interoperability tests)"; \
	    python3 -m pip install --quiet safetensors numpy; \
	  else echo "missing Python packages; run: python3 -m pip install safetensors numpy" >&2; exit 1; fi; }
	@# torchrun for the launcher tests: the CPU wheel (PyPI's default pulls ~6 GB of CUDA wheels).
	@python3 -c 'import torch.distributed.run' 2>/dev/null || { \
	  if [ "$$(id -u)" = "0" ]; then echo "installing PyTorch (CPU) for torchrun (launcher tests)"; \
	    python3 -m pip install --quiet "torch==2.13.0+cpu" 2>/dev/null \
	      || python3 -m pip install --quiet torch --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple 2>/dev/null \
	      || { echo "no CPU wheel reachable: installing PyPI's default torch (several GB)"; python3 -m pip install --quiet torch; }; \
	  else echo "missing PyTorch; run: python3 -m pip install torch --index-url https://download.pytorch.org/whl/cpu" >&2; exit 1; fi; }

build: deps
	$(SWIFT) build -c release

test: deps
	$(SWIFT) test --no-parallel

# The main job: DigitsMLP on 4 elastic workers; worker 2 is killed at step 200, the survivors
# close the ring and go on, phalanx-run starts a replacement that joins with the current state.
demo: deps
	$(SWIFT) build -c release --product DigitsMLP
	$(SWIFT) build -c release --product phalanx-run
	rm -rf demo-output
	$(BIN)/phalanx-run --nproc 4 --out-dir demo-output -- $(BIN)/DigitsMLP \
		--epochs 30 --kill-rank 2 --at-step 200 --step-delay-ms 2 --print-every 115 --min-accuracy 0.95

bench: deps
	$(SWIFT) build -c release --product phalanx-bench
	$(BIN)/phalanx-bench kernels

clean:
	rm -rf .build
