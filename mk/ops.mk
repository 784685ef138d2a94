# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
#
# Operations: the Ansible role in contrib/ansible/ (docs/fleet.md) and the
# Prometheus metrics (docs/monitoring.md).
#
# The role's test runs ansible-playbook and ansible-lint from Debian.
DEB_DEPS += ansible-core ansible-lint
# test_metrics.py traces the textfile writer's open and rename calls.
DEB_DEPS += strace
