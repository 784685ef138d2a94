# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
#
# The scripts in scripts/ and the demo.
#
#   make demo         the XDP chapter's scenario end to end, narrated, in
#                     throwaway network namespaces (root; installs what it
#                     needs, builds, exits 0 and leaves nothing behind)
#   make shellcheck   check every shell script of scripts/ and demo/

SHELL_SCRIPTS := $(wildcard scripts/*) demo/run

.PHONY: demo demo-needs-root shellcheck

demo: demo-needs-root
	$(Q)$(MAKE) --no-print-directory deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory bpffs
	$(Q)demo/run

demo-needs-root:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "make demo needs root (it creates network namespaces and attaches XDP programs): run sudo make demo" >&2; \
		exit 1; fi

shellcheck:
	$(Q)shellcheck -x $(SHELL_SCRIPTS)
	@echo "shellcheck: $(words $(SHELL_SCRIPTS)) files clean"
