# bridgehead — plain Makefile with pkg-config. Objects go to build/,
# sanitizer objects for the unit tests to build/asan/.
#
#   make          build build/bridgehead
#   make run      install missing deps, build, serve examples/run.yaml
#   make test     install missing deps, build, run every test
#   make bench    run the benchmarks under bench/
#   make soak     the kill -9 crash loop, 20 cycles, plain and ASan binaries
#   make valgrind a relay session under valgrind (make test runs it too)
#   make install  PREFIX=/usr/local DESTDIR=

VERSION    = 0.1.0
PREFIX    ?= /usr/local
DESTDIR   ?=
CC        ?= cc
PKGS       = libuv openssl sqlite3 yaml-0.1 libcrypt libpq
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_CFLAGS := $(shell pkg-config --cflags cmocka 2>/dev/null)
CMOCKA_LIBS   := $(shell pkg-config --libs cmocka 2>/dev/null)

WARN      = -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
            -Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wvla
CPPFLAGS += -D_DEFAULT_SOURCE -DBH_VERSION='"$(VERSION)"' -I.
CFLAGS   ?= -O2 -g
ASAN      = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
LDLIBS    = $(PKG_LIBS) -lpthread -lm

LIB_SRCS  := $(sort $(wildcard connectors/*.c routing/*.c storage/*.c core/*.c))
CLI_SRCS  := $(sort $(wildcard cli/*.c))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
BENCH_SRCS := $(sort $(wildcard bench/*.c))

LIB_OBJS  := $(LIB_SRCS:%.c=build/%.o)
CLI_OBJS  := $(CLI_SRCS:%.c=build/%.o)
ALIB_OBJS := $(LIB_SRCS:%.c=build/asan/%.o)
ACLI_OBJS := $(CLI_SRCS:%.c=build/asan/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=build/bench/%)

.PHONY: all deps run test test-unit test-integration check-layering lint bench install clean

all: build/bridgehead

build/bridgehead: $(LIB_OBJS) $(CLI_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The sanitizer build of the binary, for integration runs under ASan.
build/asan/bridgehead: $(ALIB_OBJS) $(ACLI_OBJS)
	$(CC) $(ASAN) -o $@ $^ $(LDLIBS)

build/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(WARN) $(CFLAGS) -MMD -MP -c -o $@ $<

build/asan/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CMOCKA_CFLAGS) $(WARN) $(ASAN) -MMD -MP -c -o $@ $<

build/asan/tests/%: build/asan/tests/unit/%.o $(ALIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(ASAN) -o $@ $^ $(CMOCKA_LIBS) $(LDLIBS)

build/bench/%: bench/%.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(WARN) -O2 -g -o $@ $^ $(LDLIBS)

deps:
	@sh .ci/deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p var
	./build/bridgehead serve -c examples/run.yaml

test: deps
	@$(MAKE) --no-print-directory all build/asan/bridgehead $(UNIT_BINS)
	@$(MAKE) --no-print-directory check-layering
	@$(MAKE) --no-print-directory lint
	@sh tests/run.sh

test-unit: $(UNIT_BINS)
	@sh tests/run.sh unit

test-integration: all
	@sh tests/run.sh integration

# cppcheck and clang-tidy on the whole tree (.clang-tidy says which checks).
lint:
	@LINT_CFLAGS="-D_DEFAULT_SOURCE -I. $(PKG_CFLAGS)" sh tests/lint.sh

check-layering:
	@sh tests/layering.sh

# The long variants of durability tests (make test runs 5 cycles):
# CRASHLOOP_CYCLES (default 20) kill -9 cycles under load, CRASHLOOP_SEED to
# replay a run.
.PHONY: soak valgrind
soak: deps
	@$(MAKE) --no-print-directory all build/asan/bridgehead
	CRASHLOOP_CYCLES=$${CRASHLOOP_CYCLES:-20} /usr/bin/python3 tests/integration/test_crashloop.py
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    BRIDGEHEAD=$(CURDIR)/build/asan/bridgehead CRASHLOOP_CYCLES=$${CRASHLOOP_CYCLES:-20} \
	    /usr/bin/python3 tests/integration/test_crashloop.py

# serve, queue list and queue stats under valgrind: zero errors, no
# definitely lost block (tests/integration/test_valgrind.py).
valgrind: deps
	@$(MAKE) --no-print-directory all
	/usr/bin/python3 tests/integration/test_valgrind.py

bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BINS)
	@sh bench/run.sh

# install: the binary, bridgehead(8), the docs and example configs, the
# systemd unit (@PREFIX@ and @VERSION@ filled in), and
# /etc/bridgehead/bridgehead.yaml only when there is none: an admin's config
# is never overwritten. uninstall leaves that config alone too.
install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/man/man8 \
	    $(DESTDIR)$(PREFIX)/share/doc/bridgehead/examples \
	    $(DESTDIR)$(PREFIX)/lib/systemd/system $(DESTDIR)/etc/bridgehead
	install -m 0755 build/bridgehead $(DESTDIR)$(PREFIX)/sbin/bridgehead
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    cli/bridgehead.8 >build/bridgehead.8
	install -m 0644 build/bridgehead.8 $(DESTDIR)$(PREFIX)/share/man/man8/bridgehead.8
	sed -e 's|@PREFIX@|$(PREFIX)|g' examples/bridgehead.service >build/bridgehead.service
	install -m 0644 build/bridgehead.service \
	    $(DESTDIR)$(PREFIX)/lib/systemd/system/bridgehead.service
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/bridgehead/README.md
	install -m 0644 examples/*.yaml $(DESTDIR)$(PREFIX)/share/doc/bridgehead/examples/
	@if [ -e $(DESTDIR)/etc/bridgehead/bridgehead.yaml ]; then \
	    echo "$(DESTDIR)/etc/bridgehead/bridgehead.yaml exists: left as it is"; \
	else \
	    echo "install -m 0644 examples/bridgehead.yaml $(DESTDIR)/etc/bridgehead/bridgehead.yaml"; \
	    install -m 0644 examples/bridgehead.yaml $(DESTDIR)/etc/bridgehead/bridgehead.yaml; \
	fi

.PHONY: uninstall
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/bridgehead \
	    $(DESTDIR)$(PREFIX)/share/man/man8/bridgehead.8 \
	    $(DESTDIR)$(PREFIX)/lib/systemd/system/bridgehead.service
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/bridgehead
	@echo "kept $(DESTDIR)/etc/bridgehead/bridgehead.yaml and the queue; remove them by hand"

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)

.PHONY: demo
demo: all
	sh examples/demo.sh

# libFuzzer targets (tests/fuzz/fuzz_<name>.c), built with clang: the
# library sources go to build/fuzz/obj/ with fuzzer-no-link instrumentation.
#   make fuzz-build   build build/fuzz/<name>
#   make fuzz         build, then run each for FUZZ_SECONDS (default 60)
FUZZ_CC    = clang
FUZZ_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
             -fno-sanitize-recover=all
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/fuzz_%.c=build/fuzz/%)
FUZZ_OBJS := $(LIB_SRCS:%.c=build/fuzz/obj/%.o)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	sh tests/fuzz/run.sh $${FUZZ_SECONDS:-60}

build/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) $(PKG_CFLAGS) $(WARN) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link \
	    -MMD -MP -c -o $@ $<

build/fuzz/%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CPPFLAGS) $(PKG_CFLAGS) $(WARN) $(FUZZ_FLAGS) -fsanitize=fuzzer \
	    -o $@ $^ $(LDLIBS)
