# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
#
# make install [PREFIX=/usr/local] [DESTDIR=]
# make uninstall [PREFIX=/usr/local] [DESTDIR=]
# make deb              build the Debian package from a temporary copy of the
#                       tree with dpkg-buildpackage; the .deb lands in build/deb/
#
# Layout (PREFIX=/usr/local):
#   sbin/xdp-attach xdp-detach xdp-status xdp-stats xdp-block
#                                                       the scripts
#   lib/ipxdp/xdp-lib.sh                                their shared library
#   lib/ipxdp/xdp-frags-probe.o                         xdp-attach's multi-buffer probe
#   lib/bpf/ipxdp/drop-tcp.o count.o port-9090.o blocklist.o
#                                                       the objects
#   lib/systemd/system/xdp-attach@.service              boot-time attach
#   lib/systemd/system/ipxdp-blocklist.service          the blocklist's lists at boot
#   lib/systemd/system/ipxdp-metrics.service .timer     counters for node_exporter
#   share/man/man8/xdp-*.8                              man pages
#   share/doc/ipxdp/                                    README, docs, example config
#   /etc/ipxdp/blocklist.txt allow.txt                  the lists, empty and commented
#
# The configuration directory is /etc/ipxdp for the system prefixes (/usr,
# the .deb's, and /usr/local), PREFIX/etc/ipxdp for any other; the units
# and man pages name it.  The lists are configuration: install writes them
# only where they are missing, and uninstall removes them only when they
# are still exactly as installed (the .deb makes them conffiles).
# The installed copies know where they live: the line marked
# `# @IPXDP_LIBDIR@` in each script and the lines marked `# @IPXDP_OBJDIR@`
# and `# @IPXDP_FRAGS_PROBE@` in xdp-lib.sh are rewritten to PREFIX paths
# (never DESTDIR ones), and /usr/local/ in the unit and the man pages
# becomes PREFIX/.  The probe lies outside the objects directory: it is no
# program to attach, and xdp-status names only what is there.
#
# uninstall removes the same list of files that install writes, then the
# directories that belong to ipxdp alone if they are empty.

PREFIX  ?= /usr/local
DESTDIR ?=

IPXDP_SBINDIR := $(PREFIX)/sbin
IPXDP_LIBDIR  := $(PREFIX)/lib/ipxdp
IPXDP_OBJDIR  := $(PREFIX)/lib/bpf/ipxdp
IPXDP_UNITDIR := $(PREFIX)/lib/systemd/system
IPXDP_MAN8DIR := $(PREFIX)/share/man/man8
IPXDP_DOCDIR  := $(PREFIX)/share/doc/ipxdp
IPXDP_CONFDIR := $(if $(filter /usr /usr/local,$(PREFIX)),/etc/ipxdp,$(PREFIX)/etc/ipxdp)

IPXDP_SCRIPT_NAMES   := xdp-attach xdp-detach xdp-status xdp-stats xdp-block
IPXDP_MANPAGES  := $(IPXDP_SCRIPT_NAMES:%=%.8)
IPXDP_UNITS     := xdp-attach@.service ipxdp-blocklist.service ipxdp-metrics.service ipxdp-metrics.timer
IPXDP_LISTS     := blocklist.txt allow.txt
IPXDP_DOCS      := $(wildcard README.md) $(sort $(wildcard docs/*.md))
IPXDP_EXAMPLES  := systemd/eth0.conf

# Every file install writes, relative to DESTDIR.
IPXDP_INSTALLED := \
	$(IPXDP_SCRIPT_NAMES:%=$(IPXDP_SBINDIR)/%) \
	$(IPXDP_LIBDIR)/xdp-lib.sh \
	$(IPXDP_LIBDIR)/$(notdir $(PROBE)) \
	$(OBJS:$(BUILD)/%=$(IPXDP_OBJDIR)/%) \
	$(IPXDP_UNITS:%=$(IPXDP_UNITDIR)/%) \
	$(IPXDP_MANPAGES:%=$(IPXDP_MAN8DIR)/%) \
	$(addprefix $(IPXDP_DOCDIR)/,$(notdir $(IPXDP_DOCS))) \
	$(addprefix $(IPXDP_DOCDIR)/examples/,$(notdir $(IPXDP_EXAMPLES)))

# Directories nobody but ipxdp puts files in: removed by uninstall if empty.
IPXDP_OWNDIRS := $(IPXDP_DOCDIR)/examples $(IPXDP_DOCDIR) $(IPXDP_OBJDIR) $(IPXDP_LIBDIR) \
	$(IPXDP_CONFDIR)

# PREFIX ends up inside sed expressions, the unit and the scripts: keep it
# to plain absolute paths.
IPXDP_PREFIX_OK = $(shell printf '%s\n' '$(PREFIX)' | grep -Ex '/[A-Za-z0-9._+/-]*')

.PHONY: install uninstall install-check-prefix deb

install-check-prefix:
ifeq ($(IPXDP_PREFIX_OK),)
	$(error PREFIX must be an absolute path of letters, digits and ._+/-, got '$(PREFIX)')
endif
	@:

# Copy a script, replacing the one line that ends in the marker comment
# with a new assignment; fail unless there is exactly one such line.
#   ipxdp_subst_marker SRC DST MARKER ASSIGNMENT MODE
IPXDP_SUBST_MARKER = ipxdp_subst_marker() { \
	n=$$(grep -c -e "\# $$3\$$" "$$1" || true); \
	if [ "$$n" != 1 ]; then \
		echo "install: $$1 must have exactly one line ending in '\# $$3', found $$n" >&2; \
		return 1; fi; \
	sed -e "s|^.*\# $$3\$$|$$4 \# $$3|" "$$1" > "$$2.tmp" && \
	chmod "$$5" "$$2.tmp" && mv -f "$$2.tmp" "$$2"; }

# Copy a file, replacing /usr/local/ with PREFIX/ and /etc/ipxdp/ with the
# configuration directory (the units, the man pages).
#   ipxdp_subst_prefix SRC DST
IPXDP_SUBST_PREFIX = ipxdp_subst_prefix() { \
	sed -e 's|/usr/local/|$(PREFIX)/|g' -e 's|/etc/ipxdp/|$(IPXDP_CONFDIR)/|g' "$$1" > "$$2.tmp" && \
	chmod 0644 "$$2.tmp" && mv -f "$$2.tmp" "$$2"; }

install: install-check-prefix $(OBJS) $(PROBE)
	@echo "  INSTALL $(DESTDIR)$(PREFIX)"
	$(Q)install -d '$(DESTDIR)$(IPXDP_SBINDIR)' '$(DESTDIR)$(IPXDP_LIBDIR)' \
		'$(DESTDIR)$(IPXDP_OBJDIR)' '$(DESTDIR)$(IPXDP_UNITDIR)' \
		'$(DESTDIR)$(IPXDP_MAN8DIR)' '$(DESTDIR)$(IPXDP_DOCDIR)/examples'
	$(Q)set -e; $(IPXDP_SUBST_MARKER); \
	for s in $(IPXDP_SCRIPT_NAMES); do \
		ipxdp_subst_marker "scripts/$$s" '$(DESTDIR)$(IPXDP_SBINDIR)'/"$$s" \
			@IPXDP_LIBDIR@ 'IPXDP_LIBDIR=$(IPXDP_LIBDIR)' 0755; \
	done; \
	ipxdp_subst_marker scripts/xdp-lib.sh '$(DESTDIR)$(IPXDP_LIBDIR)/xdp-lib.sh.in' \
		@IPXDP_OBJDIR@ 'IPXDP_OBJDIR=$(IPXDP_OBJDIR)' 0644; \
	ipxdp_subst_marker '$(DESTDIR)$(IPXDP_LIBDIR)/xdp-lib.sh.in' \
		'$(DESTDIR)$(IPXDP_LIBDIR)/xdp-lib.sh' \
		@IPXDP_FRAGS_PROBE@ 'IPXDP_FRAGS_PROBE=$(IPXDP_LIBDIR)/$(notdir $(PROBE))' 0644; \
	rm -f '$(DESTDIR)$(IPXDP_LIBDIR)/xdp-lib.sh.in'
	$(Q)install -m 0644 $(PROBE) '$(DESTDIR)$(IPXDP_LIBDIR)/'
	$(Q)install -m 0644 $(OBJS) '$(DESTDIR)$(IPXDP_OBJDIR)/'
	$(Q)set -e; $(IPXDP_SUBST_PREFIX); \
	for f in $(IPXDP_UNITS); do \
		ipxdp_subst_prefix "systemd/$$f" '$(DESTDIR)$(IPXDP_UNITDIR)'/"$$f"; done; \
	for f in $(IPXDP_MANPAGES); do \
		ipxdp_subst_prefix "man/$$f" '$(DESTDIR)$(IPXDP_MAN8DIR)'/"$$f"; done
	$(Q)install -m 0644 $(IPXDP_DOCS) '$(DESTDIR)$(IPXDP_DOCDIR)/'
	$(Q)install -m 0644 $(IPXDP_EXAMPLES) '$(DESTDIR)$(IPXDP_DOCDIR)/examples/'
	$(Q)install -d '$(DESTDIR)$(IPXDP_CONFDIR)'
	$(Q)for f in $(IPXDP_LISTS); do \
		[ -e '$(DESTDIR)$(IPXDP_CONFDIR)'/"$$f" ] || \
			install -m 0644 "systemd/$$f" '$(DESTDIR)$(IPXDP_CONFDIR)'/"$$f"; done

uninstall: install-check-prefix
	@echo "  UNINSTALL $(DESTDIR)$(PREFIX)"
	$(Q)rm -f $(IPXDP_INSTALLED:%='$(DESTDIR)%')
	$(Q)for f in $(IPXDP_LISTS); do \
		if cmp -s "systemd/$$f" '$(DESTDIR)$(IPXDP_CONFDIR)'/"$$f"; then \
			rm -f '$(DESTDIR)$(IPXDP_CONFDIR)'/"$$f"; fi; done
	$(Q)for d in $(IPXDP_OWNDIRS:%='$(DESTDIR)%'); do \
		if [ -d "$$d" ]; then rmdir --ignore-fail-on-non-empty "$$d"; fi; done

# The package is built from a copy of the tree, so neither build/ nor the
# debian/ build products ever land in the checkout.
IPXDP_DEB_DIR := $(BUILD)/deb

deb:
	$(Q)mkdir -p '$(IPXDP_DEB_DIR)' && rm -f '$(IPXDP_DEB_DIR)'/ipxdp_*.deb '$(IPXDP_DEB_DIR)/build.log'
	$(Q)set -e; tmp=$$(mktemp -d /tmp/ipxdp-deb.XXXXXX); trap 'rm -rf "$$tmp"' EXIT; \
	mkdir "$$tmp/ipxdp"; \
	tar -cf - --exclude=./build --exclude=./.git --exclude=__pycache__ \
		--exclude=.pytest_cache . | tar -xf - -C "$$tmp/ipxdp"; \
	echo "  DEB     $(IPXDP_DEB_DIR) (dpkg-buildpackage -us -uc -b in $$tmp/ipxdp)"; \
	if ! (cd "$$tmp/ipxdp" && dpkg-buildpackage -us -uc -b) > '$(IPXDP_DEB_DIR)/build.log' 2>&1; then \
		echo "deb: dpkg-buildpackage failed; the end of $(IPXDP_DEB_DIR)/build.log:" >&2; \
		tail -n 20 '$(IPXDP_DEB_DIR)/build.log' >&2; exit 1; fi; \
	cp "$$tmp"/*.deb '$(IPXDP_DEB_DIR)/'; \
	ls '$(IPXDP_DEB_DIR)'/*.deb
