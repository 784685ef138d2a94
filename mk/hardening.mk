# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
#
# Hardening (docs/hardening.md):
#
#   make fuzz [N=1000000] [SEED=S]
#                     the differential test at scale: N seeded random frames,
#                     the same N padded to jumbo size through the xdp.frags
#                     programs, the systematic sweep and blocklist rounds, through each object
#                     and the reference classifier; every disagreement
#                     printed as a hex frame with a replay command (about 5
#                     minutes per million frames)
#   make fuzz REPLAY=sweep:SEED:INDEX|random:SEED:INDEX|jumbo:SEED:INDEX|blocklist:SEED:INDEX
#                     check that one frame again, and print it
#   make verify-stats instructions the verifier processed for each program,
#                     against the kernel's budget (fails above 10%)
#   make mutants      builds deliberately broken parsers and scripts into
#                     build/mutants/ and checks that the tests fail on each;
#                     one line per mutant, exits non-zero if any survives
#   make mutants ONLY='NAME ...'
#                     just those (hardening/mutants.py --list names them)

N      ?= 1000000
SEED   ?=
REPLAY ?=
ONLY   ?=

MUTANTS_BUILD := $(BUILD)/mutants

.PHONY: fuzz verify-stats mutants
fuzz: check-root all
	$(Q)$(PYRUN) hardening/fuzz.py $(if $(REPLAY),--replay '$(REPLAY)',-n $(N) $(if $(SEED),--seed $(SEED)))

verify-stats: check-root all
	$(Q)$(PYRUN) hardening/verify_stats.py

mutants: check-root all
	$(Q)$(MAKE) --no-print-directory bpffs
	$(Q)$(PYRUN) hardening/mutants.py --out $(MUTANTS_BUILD) \
		--clang '$(CLANG)' --cflags '$(BPF_CFLAGS)' $(if $(ONLY),--only $(ONLY))
