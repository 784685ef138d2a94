# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""Multi-buffer frames: each object's xdp.frags program on jumbo frames.

BPF_PROG_TEST_RUN hands a frame longer than its first buffer (3,520 bytes
with 4 KiB pages) to the program in several buffers, as a driver does on a
link with MTU 9000; a short ctx_in.data_end makes the first buffer shorter
still.  The programs read headers from the first buffer only (parse.h):
whatever lies there decides the verdict, exactly as if the frame ended
there, while PASS and TX return the whole frame and count adds its whole
length.  tests/test_multibuffer_e2e.py runs the same sections on a veth
pair at MTU 9000.
"""

import errno
import re
import subprocess

import pytest

import frames
from ipxdp import paths, project, reference, wire
from ipxdp.bpf import XDP_DROP, XDP_PASS, XDP_TX, BpfObject, prog_info, verdict_name

TX_PORT, TX_MAC = project.port_9090_config()
TABLE = frames.cases(TX_PORT) + frames.truncation_cases(TX_PORT)
IDS = [c.name for c in TABLE]
KEYS = range(project.COUNT_KEYS)

FRAGS = project.MULTIBUFFER_SECTION
FIRST_BUFFER_MAX = 3520  # PAGE_SIZE - XDP_PACKET_HEADROOM - skb_shared_info
PAGE = 4096
MAX_FRAGS = 17           # MAX_SKB_FRAGS
# object: (plain section, its function, the xdp.frags function), written
# out here although project reads them from progs/*.c: the names are part
# of what the scripts and users match on
OBJECTS = {
    "drop-tcp": ("drop-tcp", "xdp_drop_tcp", "xdp_drop_tcp_mb"),
    "count": ("count", "xdp_count_proto", "xdp_count_mb"),
    "port-9090": ("port-9090", "xdp_bounce_port", "xdp_bounce_mb"),
}
# Helpers that exist only since Linux 5.18, with multi-buffer XDP.
MB_HELPERS = {188: "bpf_xdp_get_buff_len", 189: "bpf_xdp_load_bytes", 190: "bpf_xdp_store_bytes"}


def filler(size):
    """@size bytes of the bounce port over and over: read as a header, they
    would be TCP to TX_PORT, so a program that read past its first buffer
    would bounce what it must drop."""
    return (TX_PORT.to_bytes(2, "big") * (size // 2 + 1))[:size]


def jumbo(frame, size):
    return frame + filler(size - len(frame))


def size_for(i):
    """4,000 to 9,000 bytes, a different size for each case."""
    return 4000 + (i * 173) % 5001


# --- the objects: two sections, two names, one body ------------------------------

@pytest.mark.parametrize("name", OBJECTS)
def test_two_entry_points_with_names_ip_shows_whole(name):
    section, plain, frags = OBJECTS[name]
    assert (project.PROGRAMS[name], project.MULTIBUFFER[name]) == (plain, frags)
    with BpfObject(paths.obj(name)) as obj:
        assert list(obj.programs) == [section, FRAGS]
        names = [obj.function(s) for s in (section, FRAGS)]
        assert names == [plain, frags]
        # The kernel keeps 15 characters of a name, and that is what `ip`
        # shows: both names fit, so ip and bpftool show the same two.
        kernel = [prog_info(obj.prog_fd(s)).name.decode() for s in (section, FRAGS)]
        assert kernel == [plain, frags]
        assert all(len(n) <= 15 for n in names)


def test_tags_do_not_tell_the_sections_apart():
    """drop-tcp's and port-9090's two programs are the same instructions,
    so the kernel gives them one tag: whoever tells them apart must use the
    name.  count's differ (the length comes from a helper in one)."""
    def tags(name):
        with BpfObject(paths.obj(name)) as obj:
            return [bytes(prog_info(obj.prog_fd(s)).tag) for s in obj.programs]
    for name in ("drop-tcp", "port-9090"):
        plain, frags = tags(name)
        assert plain == frags, name
    plain, frags = tags("count")
    assert plain != frags


def helper_calls(obj, section):
    out = subprocess.run(["llvm-objdump", "-d", "-j", section, str(obj)],
                         capture_output=True, text=True, check=True).stdout
    return [int(n) for n in re.findall(r"\tcall (\d+)$", out, re.M)]


@pytest.mark.parametrize("name", OBJECTS)
def test_plain_section_loads_before_multibuffer_kernels(name):
    """No multi-buffer helper in the plain section: it must still load on a
    kernel before 5.18.  count's xdp.frags program asks for the length."""
    obj = paths.obj(name)
    section = OBJECTS[name][0]
    plain, frags = helper_calls(obj, section), helper_calls(obj, FRAGS)
    assert not set(plain) & set(MB_HELPERS)
    if name == "count":
        assert plain == [1]                              # bpf_map_lookup_elem
        assert sorted(frags) == [1, 188]                 # + bpf_xdp_get_buff_len
    else:
        assert plain == frags == []


# --- how the kernel builds a test-run frame --------------------------------------

def non_ip(size):
    return (wire.eth(wire.ETH_P_ARP) + wire.arp()).ljust(size, b"\0")


def measured(count_obj, counters, frame, first_buffer=None):
    """(first buffer, whole frame) in bytes: count's plain program adds
    data_end - data, its xdp.frags program the whole length."""
    lengths = []
    for section in ("count", FRAGS):
        counters.clear([project.KEY_NON_IP])
        verdict, out = count_obj.run(frame, section=section, first_buffer=first_buffer)
        assert verdict == XDP_PASS and out == frame
        total = counters.total(project.KEY_NON_IP)
        assert total["packets"] == 1
        lengths.append(total["bytes"])
    return tuple(lengths)


@pytest.mark.parametrize("size, first_buffer, expect", [
    (1514, None, (1514, 1514)),
    (FIRST_BUFFER_MAX, None, (FIRST_BUFFER_MAX, FIRST_BUFFER_MAX)),
    (FIRST_BUFFER_MAX + 1, None, (FIRST_BUFFER_MAX, FIRST_BUFFER_MAX + 1)),
    (9000, None, (FIRST_BUFFER_MAX, 9000)),
    (9000, 9000, (FIRST_BUFFER_MAX, 9000)),
    (9000, 100, (100, 9000)),
    (4000, 42, (42, 4000)),
    (FIRST_BUFFER_MAX + MAX_FRAGS * PAGE, None, (FIRST_BUFFER_MAX, FIRST_BUFFER_MAX + MAX_FRAGS * PAGE)),
])
def test_kernel_splits_test_run_frames(count_obj, counters, size, first_buffer, expect):
    """The first buffer holds min(frame, ctx_in.data_end, 3,520) bytes; the
    tests below rely on it."""
    assert measured(count_obj, counters, non_ip(size), first_buffer) == expect


def test_kernel_puts_the_rest_in_at_most_17_pages(count_obj):
    for size, first_buffer in ((FIRST_BUFFER_MAX + MAX_FRAGS * PAGE + 1, None), (100 + MAX_FRAGS * PAGE + 1, 100)):
        with pytest.raises(OSError) as err:
            count_obj.run(non_ip(size), section=FRAGS, first_buffer=first_buffer)
        assert err.value.errno == errno.ENOMEM
    with pytest.raises(OSError) as err:  # a first buffer longer than the frame
        count_obj.run(non_ip(5000), section=FRAGS, first_buffer=5001)
    assert err.value.errno == errno.EINVAL


# --- the frame table, multi-buffer ------------------------------------------------
#
# Each case of tests/frames.py becomes the first buffer of a 4,000-9,000-byte
# frame; the rest is filler.  The table says by hand what the first buffer
# is, so it says what the frame gets.  For the cases cut short inside a
# header, that header runs on into the second buffer: fail closed.

def expect_drop_tcp(case, frame):
    return (XDP_DROP, None) if case.key in (6, project.KEY_MALFORMED) else (XDP_PASS, frame)


def expect_port_9090(case, frame):
    if case.bounce:
        return XDP_TX, TX_MAC + frame[6:]  # the whole frame, MAC rewritten
    return expect_drop_tcp(case, frame)


def check(obj, frame, want, first_buffer=None, section=FRAGS):
    verdict, out = obj.run(frame, section=section, first_buffer=first_buffer)
    assert verdict_name(verdict) == verdict_name(want[0])
    if want[1] is not None:
        assert len(out) == len(frame) and out == want[1]


@pytest.mark.parametrize("i", range(len(TABLE)), ids=IDS)
def test_drop_tcp_multibuffer(drop_tcp, i):
    case = TABLE[i]
    frame = jumbo(case.frame, size_for(i))
    check(drop_tcp, frame, expect_drop_tcp(case, frame), first_buffer=len(case.frame))


@pytest.mark.parametrize("i", range(len(TABLE)), ids=IDS)
def test_port_9090_multibuffer(port_9090, i):
    case = TABLE[i]
    frame = jumbo(case.frame, size_for(i))
    check(port_9090, frame, expect_port_9090(case, frame), first_buffer=len(case.frame))


@pytest.mark.parametrize("i", range(len(TABLE)), ids=IDS)
def test_count_multibuffer(count_obj, counters, i):
    case = TABLE[i]
    frame = jumbo(case.frame, size_for(i))
    verdict, out = count_obj.run(frame, section=FRAGS, first_buffer=len(case.frame))
    assert verdict == XDP_PASS and out == frame
    for key in KEYS:
        want = {"packets": 1, "bytes": len(frame)} if key == case.key else {"packets": 0, "bytes": 0}
        assert counters.total(key) == want, f"key {key}"


@pytest.mark.parametrize("i", range(len(TABLE)), ids=IDS)
def test_one_buffer_frames_through_xdp_frags(drop_tcp, port_9090, count_obj, counters, i):
    """On a link with a small MTU an xdp.frags program sees ordinary
    frames: it treats them as its plain twin does."""
    case = TABLE[i]
    check(drop_tcp, case.frame, expect_drop_tcp(case, case.frame))
    check(port_9090, case.frame, expect_port_9090(case, case.frame))
    check(count_obj, case.frame, (XDP_PASS, case.frame))
    assert counters.total(case.key) == {"packets": 1, "bytes": len(case.frame)}


XDP_OF = {reference.DROP: XDP_DROP, reference.PASS: XDP_PASS, reference.TX: XDP_TX}


def test_kernel_split_gives_the_verdicts_of_one_buffer(drop_tcp, port_9090, count_obj, counters):
    """The table's frames padded to 4,000-9,000 bytes and split where the
    kernel splits them: every header is in the first buffer, and each frame
    gets what the reference says the whole frame gets in one buffer."""
    completed = []
    for i, case in enumerate(frames.cases(TX_PORT)):
        frame = case.frame + bytes(size_for(i) - len(case.frame))
        parsed = reference.parse(frame)
        if (parsed.key, reference.port_9090(frame, TX_PORT, TX_MAC)[0] == reference.TX) != \
                (case.key, case.bounce):
            completed.append(case.name)  # padding completed what was cut short
        for obj, (verdict, out) in ((drop_tcp, reference.drop_tcp(frame)),
                                    (port_9090, reference.port_9090(frame, TX_PORT, TX_MAC))):
            check(obj, frame, (XDP_OF[verdict], None if verdict == reference.DROP else out))
        counters.clear([parsed.key])
        check(count_obj, frame, (XDP_PASS, frame))
        assert counters.total(parsed.key) == {"packets": 1, "bytes": len(frame)}, case.name
    # The padding changes only frames the table cuts short on purpose.
    assert completed == ["frame-ends-inside-tag", "frame-ends-inside-second-tag", "ipv4-options-cut-short",
                         "ipv6-ext-len-past-end", "ipv6-later-fragment-header-cut", "ipv4-tcp-cut-19-bytes"]


# --- headers past the first buffer ------------------------------------------------

def tcp_jumbo(size):
    """VLAN / IPv4 with options / TCP to TX_PORT, @size bytes, and where its
    IP headers and its TCP header end."""
    head = wire.eth(wire.ETH_P_IP, [wire.dot1q(5)]) + wire.ipv4(wire.TCP, wire.tcp(TX_PORT),
                                                                 options=b"\x01" * 8)
    l3_end = 14 + 4 + 28
    return head + bytes(size - len(head)), l3_end, l3_end + 20


@pytest.mark.parametrize("size", [4000, 9000])
def test_headers_cut_by_the_first_buffer(drop_tcp, port_9090, count_obj, counters, size):
    """The same frame with its first buffer ending at every byte of its
    headers: until the IP headers are complete in the first buffer it is
    malformed, then TCP, bounced only once the whole 20-byte TCP header is
    there.  In one buffer it would be bounced every time."""
    frame, l3_end, l4_end = tcp_jumbo(size)
    for first in range(14, l4_end + 3):
        tcp_seen, port_seen = first >= l3_end, first >= l4_end
        check(drop_tcp, frame, (XDP_DROP, None), first_buffer=first)
        check(port_9090, frame, (XDP_TX, TX_MAC + frame[6:]) if port_seen else (XDP_DROP, None),
              first_buffer=first)
        key = 6 if tcp_seen else project.KEY_MALFORMED
        counters.clear([6, project.KEY_MALFORMED])
        check(count_obj, frame, (XDP_PASS, frame), first_buffer=first)
        assert counters.total(key) == {"packets": 1, "bytes": size}, first


def long_chain(lengths, final, payload):
    """Ethernet / IPv6 / destination-options headers of the given lengths
    (multiples of 8, padded with Pad1 options) / final protocol."""
    chain = b""
    for i, length in enumerate(lengths):
        nh = 60 if i + 1 < len(lengths) else final
        chain += bytes([nh, length // 8 - 1]) + bytes(length - 2)
    return wire.eth(wire.ETH_P_IPV6) + wire.ipv6(60 if lengths else final, chain + payload)


@pytest.mark.parametrize("lengths, past", [
    ([2048, 1024], False),           # ends at 14 + 40 + 3,072 = 3,126: in the first buffer
    ([2048, 1024, 512], True),       # ends at 3,638: past it
    ([2048] * 6, True),              # six of the longest: 12,342
])
def test_long_ipv6_chain(drop_tcp, port_9090, count_obj, counters, lengths, past):
    """The one real way past the first buffer: kilobytes of IPv6 extension
    headers.  Such a frame is malformed for the programs (dropped, counted
    under 257), where in one buffer it is UDP or TCP like any other."""
    udp = long_chain(lengths, 17, wire.udp(53) + bytes(2000))
    tcp = long_chain(lengths, 6, wire.tcp(TX_PORT) + bytes(2000))
    assert reference.parse(udp).key == 17 and reference.port_9090(tcp, TX_PORT, TX_MAC)[0] == reference.TX
    assert len(udp) > FIRST_BUFFER_MAX
    key = project.KEY_MALFORMED if past else 17
    check(drop_tcp, udp, (XDP_DROP, None) if past else (XDP_PASS, udp))
    check(port_9090, udp, (XDP_DROP, None) if past else (XDP_PASS, udp))
    check(port_9090, tcp, (XDP_DROP, None) if past else (XDP_TX, TX_MAC + tcp[6:]))
    counters.clear([17, project.KEY_MALFORMED])
    check(count_obj, udp, (XDP_PASS, udp))
    assert counters.total(key) == {"packets": 1, "bytes": len(udp)}


# --- count's totals ----------------------------------------------------------------

def test_count_totals_exact_on_jumbo_frames(count_obj, counters):
    """A mix of jumbo and ordinary frames, each sent a known number of
    times: every byte of every buffer is counted."""
    icmp = wire.eth(wire.ETH_P_IP) + wire.ipv4(wire.ICMP, wire.icmp_echo(bytes(8000)))  # ping -s 8000
    udp = jumbo(wire.eth(wire.ETH_P_IPV6) + wire.ipv6(wire.UDP, wire.udp(53)), 9000)
    tcp = jumbo(wire.tcp4(80), 4000)
    small = wire.tcp4(80)
    for frame, times in ((icmp, 7), (udp, 5), (tcp, 3), (small, 2)):
        count_obj.run(frame, section=FRAGS, repeat=times)
    assert len(icmp) == 8042
    assert counters.total(1) == {"packets": 7, "bytes": 7 * 8042}
    assert counters.total(17) == {"packets": 5, "bytes": 5 * 9000}
    assert counters.total(6) == {"packets": 3 + 2, "bytes": 3 * 4000 + 2 * 54}
    assert sum(counters.total(k)["packets"] for k in KEYS) == 17
