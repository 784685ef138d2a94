# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""The project's facts, each read from the one place that defines it.

    PROGRAMS       {section: function} of every progs/*.c, sorted by
                   section ("drop-tcp": "xdp_drop_tcp", ...): the plain
                   section, named after the file; an object is built as
                   build/SECTION.o
    MULTIBUFFER_SECTION
                   "xdp.frags", the section every object also carries
    MULTIBUFFER    {section: function} of that second entry point, by the
                   object's plain section ("drop-tcp": "xdp_drop_tcp_mb")
    COUNT_MAP      count's map name, from its definition in progs/count.c
    COUNT_FIELDS   the __u64 fields of struct proto_counter (include/count.h)
    KEY_NON_IP, KEY_MALFORMED, COUNT_KEYS
                   count's keys, from include/count.h (0-255 are IP
                   protocols; COUNT_KEYS is the number of keys)
    XDP_MODES      {number: name} of the "mode" `ip -j link` reports, from
                   enum XDP_ATTACHED_* in <linux/if_link.h>
    MODE_KEYWORDS  {name: the `ip link set` keyword}, iproute2's words
    port_9090_config(build=None)
                   (TX_PORT, TX_MAC as 6 bytes) as the build recorded them
                   in BUILD/port-9090.config
    BLOCKLIST_TOTALS   the names of blocklist's totals in key order
                   ("passed", "blocked", ...), from enum blocklist_total
                   in include/blocklist.h
    BLOCKLIST_FIELDS   the __u64 fields of struct blocklist_counter
    BLOCKLIST_TOTALS_MAP, BLOCKLIST_COUNTERS_MAP, BLOCKLIST_LISTS
                   blocklist's maps (progs/blocklist.c): the totals, the
                   per-rule counters, {"block": outer map, "allow": ...}
    blocklist_config(build=None)
                   {"BLOCKLIST_MAX": N, "BLOCKLIST_COUNTERS": N} as the
                   build recorded them in BUILD/blocklist.config

The reference classifiers (reference.py, blocklist_reference.py) state the
keys and totals again on purpose: they are the specification and read
nothing from the C code.
"""

import re

from . import paths


def _read(rel):
    return (paths.ROOT / rel).read_text()


def _define(text, name):
    m = re.search(rf"^#define {name} (\d+)$", text, re.M)
    if not m:
        raise LookupError(f"no '#define {name} N' in include/count.h")
    return int(m.group(1))


def _programs():
    """({plain section: function}, {plain section: xdp.frags function})."""
    plain, frags = {}, {}
    for src in sorted((paths.ROOT / "progs").glob("*.c")):
        for section, function in re.findall(r'^SEC\("([^"]+)"\)\n\w+ (\w+)\(', src.read_text(), re.M):
            if section == MULTIBUFFER_SECTION:
                frags[src.stem] = function
            else:
                plain[section] = function
    return dict(sorted(plain.items())), dict(sorted(frags.items()))


def _xdp_modes():
    text = open("/usr/include/linux/if_link.h").read()
    body = re.search(r"XDP_ATTACHED_NONE = 0,(.*?)\}", text, re.S).group(1)
    names = re.findall(r"XDP_ATTACHED_(\w+)", body)
    words = {"DRV": "native", "SKB": "generic", "HW": "offload"}
    return {i: words[n] for i, n in enumerate(names, 1) if n in words}


_COUNT_H = _read("include/count.h")
KEY_NON_IP = _define(_COUNT_H, "COUNT_KEY_NON_IP")
KEY_MALFORMED = _define(_COUNT_H, "COUNT_KEY_MALFORMED")
COUNT_KEYS = _define(_COUNT_H, "COUNT_KEYS")
COUNT_FIELDS = tuple(re.findall(r"__u64 (\w+);",
                                re.search(r"struct proto_counter \{(.*?)\};", _COUNT_H, re.S).group(1)))
COUNT_MAP = re.search(r'^\} (\w+) SEC\("\.maps"\);', _read("progs/count.c"), re.M).group(1)

_BLOCKLIST_H = _read("include/blocklist.h")
_BLOCKLIST_MAPS = set(re.findall(r'(\w+) SEC\("\.maps"\)', _read("progs/blocklist.c")))


def _blocklist_map(name):
    if name not in _BLOCKLIST_MAPS:
        raise LookupError(f"progs/blocklist.c defines no map {name}")
    return name


BLOCKLIST_TOTALS = tuple(n.lower() for n in re.findall(
    r"BLOCKLIST_(\w+) = \d+,", re.search(r"enum blocklist_total \{(.*?)\};", _BLOCKLIST_H, re.S).group(1))
    if n != "TOTALS")
BLOCKLIST_FIELDS = tuple(re.findall(r"__u64 (\w+);",
                                    re.search(r"struct blocklist_counter \{(.*?)\};", _BLOCKLIST_H, re.S).group(1)))
BLOCKLIST_TOTALS_MAP = _blocklist_map("ipxdp_totals")
BLOCKLIST_COUNTERS_MAP = _blocklist_map("ipxdp_counters")
BLOCKLIST_LISTS = {"block": _blocklist_map("ipxdp_block"), "allow": _blocklist_map("ipxdp_allow")}

MULTIBUFFER_SECTION = "xdp.frags"
PROGRAMS, MULTIBUFFER = _programs()
XDP_MODES = _xdp_modes()
MODE_KEYWORDS = {"native": "xdpdrv", "generic": "xdpgeneric", "offload": "xdpoffload"}


def port_9090_config(build=None):
    """(TX_PORT, TX_MAC) port-9090 was built with: an int and 6 bytes."""
    words = ((build or paths.build_dir()) / "port-9090.config").read_text().split()
    values = dict(w.split("=", 1) for w in words)
    return int(values["TX_PORT"]), bytes.fromhex(values["TX_MAC"].replace(":", ""))


def blocklist_config(build=None):
    """{"BLOCKLIST_MAX": N, "BLOCKLIST_COUNTERS": N, "BLOCKLIST_V4_GROUPS": N}
    blocklist was built with."""
    words = ((build or paths.build_dir()) / "blocklist.config").read_text().split()
    return {k: int(v) for k, v in (w.split("=", 1) for w in words)}
