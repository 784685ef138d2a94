# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
#
# ipxdp: XDP programs that load with plain iproute2.
#
#   make                  build build/drop-tcp.o, build/count.o, build/port-9090.o,
#                         build/blocklist.o (and build/probe/xdp-frags-probe.o,
#                         which xdp-attach uses)
#   make TX_PORT=8443 TX_MAC=02:11:22:33:44:55
#                         build port-9090.o for another port and MAC
#   make BLOCKLIST_MAX=N BLOCKLIST_COUNTERS=M BLOCKLIST_V4_GROUPS=G
#                         build blocklist.o with room for N prefixes per list,
#                         M per-prefix counters and G range groups in its
#                         IPv4 table (docs/design.md)
#   make check            install what the tests need, then run them (root)
#   make deps             install build and test dependencies (Debian 12)
#   make clean            remove build/
#   make V=1              show the full commands

CLANG  ?= clang
PYTHON ?= /usr/bin/python3
# Python with the support package in pylib/ importable (docs/hacking.md); the
# tests find it through tests/pytest.ini.
PYRUN = PYTHONPATH=$(CURDIR)/pylib $(PYTHON)

TX_PORT ?= 9090
TX_MAC  ?= 08:00:27:dd:38:2a

BLOCKLIST_MAX      ?= 2000000
BLOCKLIST_COUNTERS ?= 262144
BLOCKLIST_V4_GROUPS ?= 1048576

BUILD    := build
FIXTURES := $(BUILD)/fixtures
PROGS    := drop-tcp count port-9090 blocklist
OBJS     := $(PROGS:%=$(BUILD)/%.o)
# What xdp-attach loads to learn whether the kernel takes multi-buffer
# programs (probe/xdp-frags-probe.c): not an object, so not in $(BUILD).
PROBE_DIR := $(BUILD)/probe
PROBE    := $(PROBE_DIR)/xdp-frags-probe.o
FIXTURE_OBJS := $(patsubst tests/fixtures/%.c,$(FIXTURES)/%.o,$(wildcard tests/fixtures/*.c)) \
	$(FIXTURES)/count-nobtf.o

# <asm/types.h> lives in the multiarch include directory on Debian; the BPF
# target does not search it by itself.
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null)
BPF_CFLAGS := -O2 -g -target bpf -Wall -Wextra -Werror \
	-Wno-compare-distinct-pointer-types -Iinclude \
	$(if $(MULTIARCH),-idirafter /usr/include/$(MULTIARCH))

ifeq ($(V),1)
Q :=
else
Q := @
endif

# Debian packages the build and the tests use (make deps installs them).
DEB_DEPS := make clang llvm gcc libc6-dev libbpf-dev libbpf1 iproute2 bpftool \
	jq python3 python3-scapy python3-pytest iputils-ping curl hping3 \
	nftables iptables ethtool tcpdump shellcheck util-linux procps \
	xdp-tools kmod binutils debhelper dpkg-dev fakeroot build-essential \
	systemd man-db groff-base

.PHONY: all clean deps check check-root bpffs FORCE
all: $(OBJS) $(PROBE) $(FIXTURE_OBJS)

# The one recipe for every BPF object: the programs, the test fixtures and
# the bench's programs (mk/bench.mk).  clang -MMD writes the headers each
# object includes into its .d file, and every object depends on the
# makefiles that build it.
define BPF_COMPILE
	@echo "  CLANG   $@"
	$(Q)$(CLANG) $(BPF_CFLAGS) -MMD -MP -c $< -o $@
endef

$(BUILD)/%.o: progs/%.c Makefile | $(BUILD)
	$(BPF_COMPILE)

$(FIXTURES)/%.o: tests/fixtures/%.c Makefile | $(FIXTURES)
	$(BPF_COMPILE)

$(PROBE): probe/xdp-frags-probe.c Makefile | $(PROBE_DIR)
	$(BPF_COMPILE)

# count built without -g: no BTF, so iproute2 cannot create its map (a test
# checks the error the troubleshooting guide quotes).
$(FIXTURES)/count-nobtf.o: BPF_CFLAGS := $(filter-out -g,$(BPF_CFLAGS))
$(FIXTURES)/count-nobtf.o: progs/count.c Makefile | $(FIXTURES)
	$(BPF_COMPILE)

# port-9090's port and MAC: validated here, recorded in a stamp file that
# changes (and so rebuilds the object) only when the values do.
PORT_OK := $(shell echo '$(TX_PORT)' | grep -Ex '[1-9][0-9]{0,4}' | awk '$$1 <= 65535')
MAC_OK  := $(shell echo '$(TX_MAC)' | grep -Eix '([0-9a-f]{2}:){5}[0-9a-f]{2}')
TX_MAC_BYTES := $(shell echo '$(TX_MAC)' | sed 's/\([0-9a-fA-F][0-9a-fA-F]\)/0x\1/g; s/:/,/g')

$(BUILD)/port-9090.config: FORCE | $(BUILD)
ifeq ($(PORT_OK),)
	$(error TX_PORT must be a port number from 1 to 65535, got '$(TX_PORT)')
endif
ifeq ($(MAC_OK),)
	$(error TX_MAC must be six hex bytes like 08:00:27:dd:38:2a, got '$(TX_MAC)')
endif
	$(Q)echo 'TX_PORT=$(TX_PORT) TX_MAC=$(TX_MAC)' > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
	@echo "  CONFIG  port-9090: TX_PORT=$(TX_PORT) TX_MAC=$(TX_MAC)"

$(BUILD)/port-9090.o: BPF_CFLAGS += -DTX_PORT=$(TX_PORT) '-DTX_MAC=$(TX_MAC_BYTES)'
$(BUILD)/port-9090.o: $(BUILD)/port-9090.config

# blocklist's capacities, the same way.  A replacement list must match the
# object's definition, so the stamp is also what tells the tests the sizes.
# Rule ids (below 2 * BLOCKLIST_MAX) and group numbers must fit the IPv4
# table's slots (include/blocklist.h).
BLOCKLIST_MAX_OK := $(shell echo '$(BLOCKLIST_MAX)' | grep -Ex '[1-9][0-9]{0,9}' | awk '$$1 <= 4194303')
BLOCKLIST_COUNTERS_OK := $(shell echo '$(BLOCKLIST_COUNTERS)' | grep -Ex '[1-9][0-9]{0,9}' | awk '$$1 < 4294967295')
BLOCKLIST_V4_GROUPS_OK := $(shell echo '$(BLOCKLIST_V4_GROUPS)' | grep -Ex '[1-9][0-9]{0,9}' | awk '$$1 >= 16 && $$1 <= 1073741824')

$(BUILD)/blocklist.config: FORCE | $(BUILD)
ifeq ($(BLOCKLIST_MAX_OK),)
	$(error BLOCKLIST_MAX must be a number of prefixes from 1 to 4194303, got '$(BLOCKLIST_MAX)')
endif
ifeq ($(BLOCKLIST_COUNTERS_OK),)
	$(error BLOCKLIST_COUNTERS must be a number of counters from 1 to 4294967294, got '$(BLOCKLIST_COUNTERS)')
endif
ifeq ($(BLOCKLIST_V4_GROUPS_OK),)
	$(error BLOCKLIST_V4_GROUPS must be a number of range groups from 16 to 1073741824, got '$(BLOCKLIST_V4_GROUPS)')
endif
	$(Q)echo 'BLOCKLIST_MAX=$(BLOCKLIST_MAX) BLOCKLIST_COUNTERS=$(BLOCKLIST_COUNTERS) BLOCKLIST_V4_GROUPS=$(BLOCKLIST_V4_GROUPS)' > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
	@echo "  CONFIG  blocklist: BLOCKLIST_MAX=$(BLOCKLIST_MAX) BLOCKLIST_COUNTERS=$(BLOCKLIST_COUNTERS) BLOCKLIST_V4_GROUPS=$(BLOCKLIST_V4_GROUPS)"

$(BUILD)/blocklist.o: BPF_CFLAGS += -DBLOCKLIST_MAX=$(BLOCKLIST_MAX)U -DBLOCKLIST_COUNTERS=$(BLOCKLIST_COUNTERS)U \
	-DBLOCKLIST_V4_GROUPS=$(BLOCKLIST_V4_GROUPS)U
$(BUILD)/blocklist.o: $(BUILD)/blocklist.config

-include $(OBJS:.o=.d) $(PROBE:.o=.d) $(FIXTURE_OBJS:.o=.d)

clean:
	rm -rf $(BUILD)

# Installs only what is missing, so a second run changes nothing.
deps:
	@missing=$$(for p in $(DEB_DEPS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -z "$$missing" ]; then echo "deps: all installed"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "deps: needs root to install:" $$missing >&2; exit 1; fi; \
	echo "deps: installing" $$missing; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null

check-root:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "make check needs root (it loads BPF programs and creates network namespaces): run it as root" >&2; \
		exit 1; fi

# Mount bpffs if it is missing (pins, bpftool).
bpffs: check-root
	@mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

check: check-root
	$(Q)$(MAKE) --no-print-directory deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory bpffs
	$(Q)cd tests && $(PYTHON) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) .

FORCE:

# Further targets (scripts, demo, bench, install, hardening) live in mk/*.mk;
# they add the directories they build into to BUILD_DIRS.
BUILD_DIRS := $(BUILD) $(FIXTURES) $(PROBE_DIR)
include $(wildcard mk/*.mk)

$(BUILD_DIRS):
	$(Q)mkdir -p $@
