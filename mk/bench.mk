# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
#
# make bench           per-packet cost of each program (BPF_PROG_TEST_RUN) and
#                      live-frame throughput against xdp-filter, nftables
#                      and iptables, side by side; the blocklist with lists
#                      of up to 1,000,000 prefixes against an nftables set,
#                      ipset and xdp-filter, and xdp-block load timed;
#                      tables, A/A self-check and verdict on stdout,
#                      build/bench.json, build/bench.png (about 4 minutes,
#                      root)
# make bench QUICK=1   the same, few rounds and no 1,000,000-prefix list
#                      (under 30 s): checks that the bench works, its
#                      figures are not to be judged
# make bench-ab PARSE=FILE
#                      A/B of a parser change: drop-tcp built from FILE (a
#                      changed copy of include/parse.h) against drop-tcp as
#                      built, both loaded twice, in one per-packet run
#                      (about a minute; QUICK=1 works here too)
#
# The floor and the traffic generators are built into build/bench/ and are
# never installed.

BENCH_BUILD := $(BUILD)/bench
BENCH_OBJS  := $(patsubst bench/progs/%.c,$(BENCH_BUILD)/%.o,$(wildcard bench/progs/*.c))
BENCH_ARGS  := $(if $(filter-out 0,$(QUICK)),--quick) --out $(BUILD)

# The plot; the blocklist's peer ipset (nftables and iptables are in DEB_DEPS).
DEB_DEPS += python3-matplotlib ipset

.PHONY: bench bench-objs bench-ab
bench-objs: $(BENCH_OBJS)

$(BENCH_BUILD)/%.o: bench/progs/%.c Makefile mk/bench.mk | $(BENCH_BUILD)
	$(BPF_COMPILE)

BUILD_DIRS += $(BENCH_BUILD)

-include $(BENCH_OBJS:.o=.d)

bench: check-root all bench-objs
	$(Q)$(PYRUN) bench/bench.py $(BENCH_ARGS)

# drop-tcp again, with a copy of FILE as the parse.h it finds first.
AB_BUILD := $(BENCH_BUILD)/ab
AB_OUT   ?= $(BUILD)/bench-ab.json
BUILD_DIRS += $(AB_BUILD)

bench-ab: check-root all bench-objs | $(AB_BUILD)
	$(if $(PARSE),,$(error name the changed parser: make bench-ab PARSE=FILE))
	$(Q)cp $(PARSE) $(AB_BUILD)/parse.h
	@echo "  CLANG   $(AB_BUILD)/drop-tcp.o (parse.h: $(PARSE))"
	$(Q)$(CLANG) -I$(AB_BUILD) $(BPF_CFLAGS) -c progs/drop-tcp.c -o $(AB_BUILD)/drop-tcp.o
	$(Q)$(PYRUN) bench/ab.py $(if $(filter-out 0,$(QUICK)),--quick) --out $(AB_OUT) \
		$(AB_BUILD)/drop-tcp.o
