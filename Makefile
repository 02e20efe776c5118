# wsreg: the two commands a newcomer needs are `make demo` and `make test`.
# Both install missing Debian packages first (scripts/install-deps.sh; make
# demo only the few it needs).
BUILD ?= build
JOBS ?= $(shell nproc)
BUILD_TYPE ?= RelWithDebInfo

.PHONY: all deps configure build release test stress check check-tsan check-asan conformance demo bench bench-smoke clean

all: build

deps:
	bash scripts/install-deps.sh

# The uws variant of the end-to-end benchmark (benchmarks/e2e/README.md) is
# built only where UWS_DIR and USOCKETS_DIR name the unpacked uWebSockets and
# uSockets sources, e.g. make bench UWS_DIR=/tmp/uws/uWebSockets
# USOCKETS_DIR=/tmp/uws/uSockets (or the same in the environment); once
# configured, the build directory remembers them.
UWS_CMAKE = $(if $(UWS_DIR),-DUWS_DIR=$(abspath $(UWS_DIR))) \
            $(if $(USOCKETS_DIR),-DUSOCKETS_DIR=$(abspath $(USOCKETS_DIR)))

configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(UWS_CMAKE)

build: configure
	cmake --build $(BUILD) -j$(JOBS)

# The most common user build, -O3 (Release), which warns differently from
# -O2 (RelWithDebInfo): every target must compile warning-free in both.
release: deps
	cmake -S . -B $(BUILD)-release -DCMAKE_BUILD_TYPE=Release $(UWS_CMAKE)
	cmake --build $(BUILD)-release -j$(JOBS)

# Every Catch2 test case is its own CTest test with a 60 s timeout. The
# end-to-end tests (label e2e, tests/e2e) need their npm modules first.
test: build
	bash scripts/install-npm-deps.sh
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -LE stress

# The long scenarios (hidden Catch2 tests tagged [.stress]), one at a time so
# their timing is not disturbed by each other.
stress: build
	cd $(BUILD) && ctest --output-on-failure -L stress

# The test suite under ThreadSanitizer, then AddressSanitizer with
# UndefinedBehaviorSanitizer, each in its own build directory, one test at a
# time (sanitized code is 5-15 times slower; two at once on 2 cores starve). Suppressions
# (tests/sanitizers/) cover third-party code only, each with its reason.
SAN_CMAKE = -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSREG_BUILD_EXAMPLES=OFF -DWSREG_BUILD_BENCHMARKS=OFF
check: check-tsan check-asan

check-tsan: deps
	cmake -S . -B $(BUILD)-tsan $(SAN_CMAKE) -DWSREG_SANITIZE=thread
	cmake --build $(BUILD)-tsan -j$(JOBS)
	cd $(BUILD)-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=7 suppressions=$(CURDIR)/tests/sanitizers/tsan.supp" \
	  ctest --output-on-failure -LE stress

check-asan: deps
	cmake -S . -B $(BUILD)-asan $(SAN_CMAKE) -DWSREG_SANITIZE=address,undefined
	cmake --build $(BUILD)-asan -j$(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS="detect_leaks=1 halt_on_error=1" UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1" \
	  LSAN_OPTIONS="suppressions=$(CURDIR)/tests/sanitizers/lsan.supp print_suppressions=0" \
	  ctest --output-on-failure -LE stress

# RFC 6455 conformance: the Autobahn|Testsuite (cases 1.* to 10.*) against
# echo_server under both policies, with 1 and 2 io threads; skipped with a
# message where the suite is not installed (../shared/autobahn, or AUTOBAHN=).
conformance: build
	bash scripts/conformance.sh $(BUILD)

# broadcast_server under each policy, 1,000 real connections for 10 s each.
# Installs only the packages the demo needs and builds only the two programs
# it runs (broadcast_server and the load client), in a build directory of
# its own: a few minutes, not the whole tree's tests and benchmarks. Ends
# with one line saying whether the run passed.
DEMO_BUILD ?= $(BUILD)-demo
demo:
	bash scripts/install-deps.sh demo
	cmake -S . -B $(DEMO_BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DWSREG_BUILD_TESTS=OFF \
	  -DWSREG_BUILD_BENCHMARKS=OFF -DWSREG_BUILD_EXAMPLES=ON -DWSREG_BUILD_LOAD_CLIENT=ON
	cmake --build $(DEMO_BUILD) --target broadcast_server wsreg_load_client -j$(JOBS)
	bash scripts/demo.sh $(DEMO_BUILD)

# The actor-versus-mutex benchmarks (docs/benchmarks.md): in-process
# (Google Benchmark) and end-to-end (server and load client as separate
# processes on loopback), then the cluster benchmark (three nodes over
# Redis and NATS against one node, brokers of its own on free ports),
# writing benchmarks/results/ and docs/img/. The end-to-end runs include
# uWebSockets (variant uws) when UWS_DIR and USOCKETS_DIR are set (above).
# About 45 minutes; run it on an otherwise idle machine.
bench: build
	bash scripts/bench-inproc.sh $(BUILD)
	bash scripts/bench-e2e.sh $(BUILD)
	bash scripts/bench-cluster.sh $(BUILD)

# Every benchmark for a few seconds at small sizes, into a temporary
# directory (committed results untouched), so the benchmarks never rot.
bench-smoke: build
	SMOKE=1 bash scripts/bench-inproc.sh $(BUILD)
	SMOKE=1 bash scripts/bench-e2e.sh $(BUILD)
	SMOKE=1 bash scripts/bench-cluster.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD)-tsan $(BUILD)-asan $(BUILD)-release $(DEMO_BUILD)
