# tensorblob: libtensorblob, its tests and benchmarks.
#
#   make            build the library and test programs (installs Debian deps first)
#   make test       build and run every test, also on an ASan + UBSan build;
#                   ends with "N passed, M failed"
#   make asan       only the ASan + UBSan half of make test (build/asan)
#   make bench      store benchmark (tests/bench), ratios against memcpy
#   make bench-mount  blobfs against plain files on the native filesystem (and a
#                   data directory's mount against single-store mounts)
#   make bench-s3   blobfs over S3 against boto3 and s3fs (a local RADOS Gateway)
#   make deps       install the Debian packages the project needs

# Build in parallel by default: `make test` on a fresh machine should use every core.
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
BUILD    ?= build
CXX      ?= g++
OPT      ?= -O2 -g
SAN      ?=
LIB_PKGS := nlohmann_json yaml-cpp libxxhash libcurl openssl tinyxml2
FS_PKGS  := fuse3 libsystemd libmicrohttpd liburing
# Recursive (=) on purpose: pkg-config must run after `make deps` installed the
# packages, not when a fresh machine first reads this Makefile.
PKG_CFLAGS = $(shell pkg-config --cflags $(LIB_PKGS) $(FS_PKGS))
LIB_LIBS   = $(shell pkg-config --libs $(LIB_PKGS)) -pthread
FS_LIBS    = $(shell pkg-config --libs $(FS_PKGS))
# Each folder sees the public headers and its own: the command line and the
# mount reach the store only through include/tensorblob/. Tests see all.
CPPFLAGS += -Iinclude
VERSION  := 0.1.0
CPPFLAGS += -DTENSORBLOB_VERSION='"$(VERSION)"'
CXXFLAGS += -std=c++20 $(OPT) $(SAN) -Wall -Wextra -pedantic -MMD -MP
LDFLAGS  += $(SAN)

# Every Debian package the project uses (build, tests, the python reference tools).
DEB_PACKAGES := g++ make pkg-config nlohmann-json3-dev catch2 libxxhash-dev xxhash \
                libfuse3-dev fuse3 libyaml-cpp-dev libsystemd-dev python3 python3-numpy python3-xxhash \
                clang libclang-rt-14-dev libcurl4-openssl-dev libssl-dev libtinyxml2-dev \
                libmicrohttpd-dev liburing-dev
# What the S3 tests add: a real S3 server (Ceph's RADOS Gateway) and boto3 to
# upload fixtures the way users do. Installed by make test, not by make.
TEST_DEB_PACKAGES := ceph-mon ceph-osd radosgw ceph-common python3-boto3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

LIB_SRCS   := $(wildcard src/store/*.cc) $(wildcard src/s3/*.cc)
LIB_OBJS   := $(LIB_SRCS:%.cc=$(BUILD)/%.o)
LIB        := $(BUILD)/libtensorblob.a
CLI_SRCS   := $(wildcard src/cli/*.cc)
CLI_OBJS   := $(CLI_SRCS:%.cc=$(BUILD)/%.o)
TBLOB      := $(BUILD)/tblob
FS_SRCS    := $(wildcard src/fs/*.cc)
FS_OBJS    := $(FS_SRCS:%.cc=$(BUILD)/%.o)
FS_LIB_OBJS := $(filter-out $(BUILD)/src/fs/main.o $(BUILD)/src/fs/fuse_ops.o $(BUILD)/src/fs/signals.o \
                 $(BUILD)/src/fs/refresher.o $(BUILD)/src/fs/ring_transport.o,$(FS_OBJS))
BLOBFS     := $(BUILD)/blobfs
UNIT_SRCS  := $(wildcard tests/unit/*.cc)
UNIT_OBJS  := $(UNIT_SRCS:%.cc=$(BUILD)/%.o)
UNIT_BIN   := $(BUILD)/tests/unit_tests
TOOL_SRCS  := $(wildcard tests/conformance/*.cc)
TOOL_BINS  := $(TOOL_SRCS:tests/conformance/%.cc=$(BUILD)/tests/%)
BENCH_SRCS := $(wildcard tests/bench/*.cc)
BENCH_BINS := $(BENCH_SRCS:tests/bench/%.cc=$(BUILD)/bench/%)

PREFIX     ?= /usr/local
DESTDIR    ?=
UNITDIR    ?= /etc/systemd/system

# libFuzzer targets (tests/fuzz), built with clang under ASan + UBSan from
# the parsers' own sources.
FUZZ_SRCS     := $(wildcard tests/fuzz/fuzz_*.cc)
FUZZ_BINS     := $(FUZZ_SRCS:tests/fuzz/%.cc=$(BUILD)/fuzz/%)
FUZZ_DEP_SRCS := $(LIB_SRCS) src/fs/options.cc src/fs/namespace.cc src/cli/args.cc
FUZZ_DEP_OBJS := $(FUZZ_DEP_SRCS:%.cc=$(BUILD)/fuzz/obj/%.o)
FUZZ_CXX      ?= clang++
FUZZ_FLAGS    := -std=c++20 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_SECONDS  ?= 30

.PHONY: all deps test-deps programs test asan asan-build bench bench-mount bench-s3 bench-stress demo install fuzz clean
.SECONDARY:
.DEFAULT_GOAL := all

all: $(LIB) $(TBLOB) $(BLOBFS) $(UNIT_BIN) $(TOOL_BINS) $(BENCH_BINS) $(FUZZ_BINS)

# $(call apt_install,PACKAGES): installs those of PACKAGES not installed yet.
apt_install = missing=$$(for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "make: installing" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

deps:
	@$(call apt_install,$(DEB_PACKAGES))

test-deps: deps
	@$(call apt_install,$(TEST_DEB_PACKAGES))

$(LIB_OBJS): DIR_INCLUDES := -Isrc/store -Isrc/s3
$(FS_OBJS): DIR_INCLUDES := -Isrc/fs
$(CLI_OBJS): DIR_INCLUDES := -Isrc/cli
$(BUILD)/tests/%.o: DIR_INCLUDES := -Isrc/store -Isrc/s3 -Isrc/fs -Isrc/cli

$(BUILD)/%.o: %.cc | deps
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(DIR_INCLUDES) $(PKG_CFLAGS) $(CXXFLAGS) -c $< -o $@

# Made afresh: `ar r` keeps members whose sources were removed.
$(LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

$(TBLOB): $(CLI_OBJS) $(LIB)
	$(CXX) $(LDFLAGS) $^ -o $@ $(LIB_LIBS)

$(BLOBFS): $(FS_OBJS) $(LIB)
	$(CXX) $(LDFLAGS) $^ -o $@ $(LIB_LIBS) $(FS_LIBS)

# The unit tests also cover the CLI's parsers and blobfs's units short of FUSE.
$(UNIT_BIN): $(UNIT_OBJS) $(BUILD)/src/cli/args.o $(FS_LIB_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ -o $@ $(LIB_LIBS) $(FS_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/conformance/%.o $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ -o $@ $(LIB_LIBS)

$(BUILD)/bench/%: $(BUILD)/tests/bench/%.o $(LIB)
	@mkdir -p $(@D)
	$(CXX) $(LDFLAGS) $^ -o $@ $(LIB_LIBS)

$(BUILD)/fuzz/obj/%.o: %.cc | deps
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(CPPFLAGS) -Isrc/store -Isrc/s3 -Isrc/fs -Isrc/cli $(PKG_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(BUILD)/fuzz/fuzz_%: $(BUILD)/fuzz/obj/tests/fuzz/fuzz_%.o $(FUZZ_DEP_OBJS)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ -o $@ $(LIB_LIBS)

# Each target for FUZZ_SECONDS (default 30) from its seed corpus.
fuzz: $(FUZZ_BINS)
	tests/fuzz/run_fuzz.sh $(BUILD) $(FUZZ_SECONDS)

# `make test` runs every suite twice: on the normal build, and on an
# ASan + UBSan build of the same programs (build/asan).
ASAN_BUILD := build/asan
TEST_PROGS := $(LIB) $(TBLOB) $(BLOBFS) $(UNIT_BIN) $(TOOL_BINS)

programs: $(TEST_PROGS)

asan-build: deps
	$(MAKE) BUILD=$(ASAN_BUILD) OPT="-O1 -g -fno-omit-frame-pointer" \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" programs

# (The benchmarks are not built for it: `make bench-*` builds them.)
test: programs $(FUZZ_BINS) asan-build test-deps
	tests/run_tests.sh $(BUILD) $(ASAN_BUILD)

# The sanitized suites alone.
asan: asan-build
	tests/run_tests.sh $(ASAN_BUILD)

# The 16-reader load test for a minute instead of a few seconds.
bench-stress: $(TBLOB) $(BLOBFS)
	STRESS_SECONDS=60 TESTS_MATCH=sixteen_readers BUILD=$(BUILD) tests/mount/mount_test.sh

bench: $(BENCH_BINS)
	$(BUILD)/bench/store_bench
	$(BUILD)/bench/ragged_bench

# With Debian's squashfuse and squashfs-tools installed, bench-mount adds
# squashfuse_ll as a peer column (they are not part of make deps).
bench-mount: $(BENCH_BINS) $(BLOBFS)
	$(BUILD)/bench/mount_bench --blobfs $(BLOBFS)
	@echo "== the large-tensor set: 500 x (3, 224, 224) float32"
	$(BUILD)/bench/mount_bench --blobfs $(BLOBFS) --count 500 --dim 150528 --big no
	@echo "== writing through a writable mount"
	$(BUILD)/bench/write_bench --blobfs $(BLOBFS)
	@echo "== the same mount benchmark with FUSE over io_uring (the kernel switch on for it, put back after)"
	@knob=/sys/module/fuse/parameters/enable_uring; old=$$(cat $$knob); echo Y > $$knob; \
	  $(BUILD)/bench/mount_bench --blobfs $(BLOBFS) --opts transport=uring --peer no --big no; rc=$$?; \
	  echo $$old > $$knob; exit $$rc
	@echo "== transports: /dev/fuse and FUSE over io_uring against plain files (the kernel switch on for the run)"
	$(BUILD)/bench/transport_bench --blobfs $(BLOBFS)
	$(BUILD)/bench/transport_bench --blobfs $(BLOBFS) --count 500 --dim 150528
	@echo "== a data directory mounted whole (1, 100 and 10,000 stores)"
	$(BUILD)/bench/catalog_bench --blobfs $(BLOBFS)

# blobfs over S3 against boto3 and s3fs on a local RADOS Gateway
# (tests/bench/s3_bench.sh); installs s3fs and the gateway's packages.
bench-s3: $(TBLOB) $(BLOBFS) test-deps
	@$(call apt_install,s3fs)
	tests/bench/s3_bench.sh $(BUILD)

# The main job: a demo blob (created once: 10,000 embeddings of 64 float32),
# mounted at build/demo/mnt and read with ls, cat, dd and numpy.
DEMO ?= $(BUILD)/demo
demo: $(TBLOB) $(BLOBFS)
	@set -e; mkdir -p $(DEMO)/mnt; \
	if [ ! -f $(DEMO)/blob/.conf ]; then \
	  echo "== creating the demo blob $(DEMO)/blob (10,000 x 64 float32)"; \
	  /usr/bin/python3 -c "import numpy as np; np.save('$(DEMO)/src.npy', \
	    (np.arange(10000, dtype=np.float32)[:, None] + np.arange(64, dtype=np.float32)[None, :] / 100))"; \
	  $(TBLOB) import $(DEMO)/blob $(DEMO)/src.npy --create --block-size 4096; rm -f $(DEMO)/src.npy; \
	fi; \
	if ! grep -q " $$(realpath $(DEMO)/mnt) fuse.blobfs" /proc/mounts; then \
	  echo "== $(BLOBFS) $(DEMO)/blob $(DEMO)/mnt"; $(BLOBFS) $(DEMO)/blob $(DEMO)/mnt; fi; \
	echo "== ls $(DEMO)/mnt | head -5   (every tensor is a file)"; ls $(DEMO)/mnt | head -5; \
	echo "== cat $(DEMO)/mnt/meta.yaml"; cat $(DEMO)/mnt/meta.yaml; \
	echo "== dd if=$(DEMO)/mnt/all.bin bs=256 skip=42 count=1 | od -An -f | head -1   (tensor 42)"; \
	dd if=$(DEMO)/mnt/all.bin bs=256 skip=42 count=1 status=none | od -An -f | head -1; \
	echo "== python3 -c \"import numpy as np; a = np.load('$(DEMO)/mnt/all.npy', mmap_mode='r'); print(a.shape, a[42, :4])\""; \
	/usr/bin/python3 -c "import numpy as np; a = np.load('$(DEMO)/mnt/all.npy', mmap_mode='r'); print(a.shape, a[42, :4])"; \
	echo "== unmount with: fusermount3 -u $(DEMO)/mnt"

# Installs the programs, the library and headers, the default config (as
# $(PREFIX)/share/tensorblob/blobfs.yaml) and the systemd template unit, with
# ExecStart pointing at the installed blobfs.
# Every path is quoted: PREFIX and DESTDIR may hold spaces. The unit's
# ExecStart quotes the binary's path when it has one (systemd's own syntax).
install: $(LIB) $(TBLOB) $(BLOBFS)
	install -d "$(DESTDIR)$(PREFIX)/bin" "$(DESTDIR)$(PREFIX)/lib" "$(DESTDIR)$(PREFIX)/include/tensorblob" \
	  "$(DESTDIR)$(PREFIX)/share/tensorblob" "$(DESTDIR)$(UNITDIR)" "$(DESTDIR)/etc/blobfs"
	install -m 755 $(TBLOB) $(BLOBFS) "$(DESTDIR)$(PREFIX)/bin/"
	install -m 644 $(LIB) "$(DESTDIR)$(PREFIX)/lib/"
	install -m 644 include/tensorblob/*.h "$(DESTDIR)$(PREFIX)/include/tensorblob/"
	install -m 644 conf/blobfs.yaml "$(DESTDIR)$(PREFIX)/share/tensorblob/blobfs.yaml"
	@exe='$(PREFIX)/bin/blobfs'; case "$$exe" in *" "*) exe="\"$$exe\"";; esac; \
	  sed "s|/usr/local/bin/blobfs|$$exe|" systemd/blobfs@.service > "$(DESTDIR)$(UNITDIR)/blobfs@.service"
	chmod 644 "$(DESTDIR)$(UNITDIR)/blobfs@.service"

clean:
	rm -rf build

-include $(FUZZ_DEP_OBJS:.o=.d) $(FUZZ_SRCS:tests/fuzz/%.cc=$(BUILD)/fuzz/obj/tests/fuzz/%.d) $(FS_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(LIB_OBJS:.o=.d) $(UNIT_OBJS:.o=.d) $(TOOL_SRCS:%.cc=$(BUILD)/%.d) $(BENCH_SRCS:%.cc=$(BUILD)/%.d)
