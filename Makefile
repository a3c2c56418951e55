# The README's two commands:
#   make run    installs missing Debian packages, builds Release, runs frugal on a real model
#   make test   installs, builds, runs the whole test suite (ctest)
BUILD ?= build
JOBS ?= $(shell nproc)
MODEL ?= ../shared/models/stories260K.gguf
PROMPT ?= Once upon a time
CMAKE_FLAGS ?=

.PHONY: run serve test build deps clean fuzz sanitize bench bench-kernels bench-serve bench-callgrind

deps:
	@bash scripts/install-deps.sh

$(BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/frugal run -m $(MODEL) -p "$(PROMPT)" -n 200 --temp 0

# An OpenAI-compatible server on the default model (Ctrl-C drains and stops it).
serve: build
	$(BUILD)/frugal serve -m $(MODEL) --port $(or $(PORT),8080)

test: build
	bash scripts/install-js-deps.sh
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	bash scripts/fuzz.sh 60

# GGUF parser fuzzing under ASan/UBSan with clang/libFuzzer; SECONDS=N bounds the run.
fuzz: deps
	bash scripts/fuzz.sh $(or $(SECONDS),300)

sanitize: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFRUGAL_SANITIZE=ON -DFRUGAL_BUILD_BENCH=OFF
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

bench-kernels: build
	$(BUILD)/frugal_bench_kernels

bench: build
	bash scripts/bench-vs-llamacpp.sh

# Instruction counts of the hot AVX2 kernels under callgrind (stable on a noisy machine).
bench-callgrind: deps
	bash scripts/bench/callgrind-kernels.sh $(if $(FILTER),--filter '$(FILTER)')

# Serving benchmark against llama-server: make bench-serve SERVE_MODEL=model.gguf
bench-serve: build
	bash scripts/bench-serve.sh -m $(or $(SERVE_MODEL),$(MODEL))

clean:
	rm -rf $(BUILD) build-asan build-fuzz
