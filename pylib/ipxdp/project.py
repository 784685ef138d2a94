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

The reference classifier (reference.py) states the keys again on purpose:
it is the specification and reads nothing from the C code.
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

MULTIBUFFER_SECTION = "xdp.frags"
PROGRAMS, MULTIBUFFER = _programs()
XDP_MODES = _xdp_modes()
MODE_KEYWORDS = {"native": "xdpdrv", "generic": "xdpgeneric", "offload": "xdpoffload"}


def port_9090_config(build=None):
    """(TX_PORT, TX_MAC) port-9090 was built with: an int and 6 bytes."""
    words = ((build or paths.build_dir()) / "port-9090.config").read_text().split()
    values = dict(w.split("=", 1) for w in words)
    return int(values["TX_PORT"]), bytes.fromhex(values["TX_MAC"].replace(":", ""))
