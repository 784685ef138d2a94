# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
#
# make bench           per-packet cost of each program (BPF_PROG_TEST_RUN) and
#                      live-frame throughput against nftables and iptables,
#                      side by side; table on stdout, build/bench.json,
#                      build/bench.png (about 4 minutes, root)
# make bench QUICK=1   the same, few rounds (under 30 s): checks that the
#                      bench works, its figures are not to be judged
#
# The floor and the traffic generator are built into build/bench/ and are
# never installed.

BENCH_BUILD := $(BUILD)/bench
BENCH_OBJS  := $(patsubst bench/progs/%.c,$(BENCH_BUILD)/%.o,$(wildcard bench/progs/*.c))
BENCH_ARGS  := $(if $(filter-out 0,$(QUICK)),--quick) --out $(BUILD)

# The plot.
DEB_DEPS += python3-matplotlib

.PHONY: bench bench-objs
bench-objs: $(BENCH_OBJS)

$(BENCH_BUILD)/%.o: bench/progs/%.c Makefile mk/bench.mk | $(BENCH_BUILD)
	$(BPF_COMPILE)

BUILD_DIRS += $(BENCH_BUILD)

-include $(BENCH_OBJS:.o=.d)

bench: check-root all bench-objs
	$(Q)$(PYRUN) bench/bench.py $(BENCH_ARGS)
