# wsreg: the two commands a newcomer needs are `make demo` and `make test`.
# Both install missing Debian packages first (scripts/install-deps.sh).
BUILD ?= build
JOBS ?= $(shell nproc)
BUILD_TYPE ?= RelWithDebInfo

.PHONY: all deps configure build test stress demo clean

all: build

deps:
	bash scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: configure
	cmake --build $(BUILD) -j$(JOBS)

# Every Catch2 test case is its own CTest test with a 60 s timeout.
test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -LE stress

# The long scenarios (hidden Catch2 tests tagged [.stress]), one at a time so
# their timing is not disturbed by each other.
stress: build
	cd $(BUILD) && ctest --output-on-failure -L stress

# broadcast_server under each policy, 1,000 real connections for 10 s each.
demo: build
	bash scripts/demo.sh $(BUILD)

clean:
	rm -rf $(BUILD)
