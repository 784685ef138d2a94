# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The README's commands do what the README says.

Its recipe for reading count's counters (ip -> prog id -> map id ->
bpftool dump summed with jq) is taken from README.md as written and run
against count attached with plain `ip` to a veth that carried known
traffic.
"""

import json
import re

from ipxdp import paths, project
from ipxdp.netns import VethPair

README = (paths.ROOT / "README.md").read_text()


def readme_block(first_line_start):
    """The indented code block of README.md whose first line starts so."""
    for block in re.findall(r"(?:^    .*\n)+", README, flags=re.M):
        lines = [line[4:] for line in block.splitlines()]
        if lines[0].startswith(first_line_start):
            return "\n".join(lines)
    raise AssertionError(f"README.md has no code block starting {first_line_start!r}")


def test_readme_counter_recipe():
    recipe = readme_block("prog=$(ip -j link show dev eth0")
    with VethPair("ipxdp-readme") as net:
        srv = net.server
        srv.ip("link", "set", "dev", srv.dev, "xdpgeneric", "obj", str(paths.obj("count")), "sec", "count")
        net.client.run(["ping", "-c", "3", "-i", "0.2", "-s", "100", srv.ip4], check=True)
        res = srv.run(["bash", "-euo", "pipefail", "-c", recipe.replace("eth0", srv.dev)], check=True)
    rows = {row["proto"]: row for row in map(json.loads, res.stdout.split())}
    # Three echo requests (ICMP, 14 + 20 + 8 + 100 bytes each) reached the
    # server; ARP and the odd IPv6 MLD report may come too.
    assert rows[1] == {"proto": 1, "packets": 3, "bytes": 3 * 142}
    assert set(rows) <= {1, 58, project.KEY_NON_IP}


def test_readme_commands_exist():
    """The two commands a newcomer is told to run are real make targets."""
    assert "apt-get update && apt-get install -y make && make demo" in README
    assert "apt-get update && apt-get install -y make && make check" in README
    ci = (paths.ROOT / ".ci/run").read_text()
    assert "\nmake check\n" in ci and "\nmake demo\n" in ci
