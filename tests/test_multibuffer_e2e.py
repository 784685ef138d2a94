# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""End to end at MTU 9000: the xdp.frags sections on a veth pair, attached
with plain `ip`, in native and in generic mode.

Native XDP on veth hands a frame longer than 3,520 bytes to the program in
several buffers; generic XDP hands it the skb as it is, which on a sender
with TSO/GSO on is a super-packet of up to 64 KB, also in several buffers.
"""

import os
import time

import pytest

from ipxdp import paths, project, wire
from ipxdp.netns import VethPair, wait_for

PYTHON = paths.PYTHON
MODES = {"native": "xdpdrv", "generic": "xdpgeneric"}
OBJECTS = project.MULTIBUFFER  # object: its xdp.frags function
PASS_FRAGS = paths.PROBE  # passes every frame, in section xdp.frags
HTTP_PORT = 8000
ETH_HLEN = 14
FIRST_BUFFER_MAX = 3520

pytestmark = pytest.mark.usefixtures("private_tc_bpf_mnt")


def ip_attach(ns, mode, obj, section="xdp.frags", dev=None, force=False):
    """`ip link set dev DEV xdpdrv|xdpgeneric obj OBJ sec SECTION`; returns
    the CompletedProcess."""
    return ns.run(["ip", *(["-force"] if force else []), "link", "set", "dev", dev or ns.dev,
                   MODES[mode], "obj", str(obj), "sec", section])


def attach(ns, mode, name, dev=None):
    """Attach object @name's xdp.frags program; returns its prog id."""
    res = ip_attach(ns, mode, paths.obj(name), dev=dev)
    assert res.returncode == 0, res.stderr
    xdp = ns.xdp(dev)
    assert xdp["mode"] == (1 if mode == "native" else 2)
    assert xdp["prog"]["name"] == OBJECTS[name]
    return xdp["prog"]["id"]


def detach(ns, mode, dev=None):
    ns.ip("link", "set", "dev", dev or ns.dev, MODES[mode], "off")
    assert "xdp" not in ns.link(dev)


def count_totals(ns, dev=None):
    """count's counters on DEV, summed over the CPUs: {key: {packets, bytes}}
    for every key that counted something (through bpftool, as xdp-stats)."""
    return {key: {"packets": sum(p for p, _ in per_cpu), "bytes": sum(b for _, b in per_cpu)}
            for key, per_cpu in ns.count_counters(dev).items()}


def tx_counters(ns, dev=None):
    tx = ns.link(dev)["stats64"]["tx"]
    return tx["packets"], tx["bytes"]


@pytest.fixture
def net():
    with VethPair("ipxdp-mb", mtu=9000) as pair:
        yield pair


# --- attaching ---------------------------------------------------------------------

@pytest.mark.parametrize("name", OBJECTS)
def test_native_attach_at_mtu_9000_needs_xdp_frags(net, name):
    res = ip_attach(net.server, "native", paths.obj(name), section=name)
    assert res.returncode != 0
    assert "veth: Peer MTU is too large to set XDP." in res.stderr
    assert "xdp" not in net.server.link()
    prog_id = attach(net.server, "native", name)
    # ip shows the name the kernel keeps (15 characters): the whole name.
    assert f"prog/xdp id {prog_id} name {OBJECTS[name]} " in net.server.ip("-d", "link", "show", "dev", net.server.dev)


# --- ping -s 8000 ----------------------------------------------------------------

PING_N, PING_SIZE = 5, 8000
PING_FRAME = ETH_HLEN + 20 + 8 + PING_SIZE   # 8,042 bytes, three buffers in native mode


def ping(net, dst, size=PING_SIZE, n=PING_N):
    return net.client.run(["ping", "-q", "-M", "do", "-c", str(n), "-i", "0.05", "-W", "2",
                           "-s", str(size), dst])


@pytest.mark.parametrize("mode", MODES)
def test_ping_8000_passes_drop_tcp(net, mode):
    attach(net.server, mode, "drop-tcp")
    for dst in (net.server.ip4, net.server.ip6):
        res = ping(net, dst)
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"{PING_N} packets transmitted, {PING_N} received" in res.stdout


@pytest.mark.parametrize("mode", MODES)
def test_ping_8000_counted_with_every_byte(net, mode):
    attach(net.server, mode, "count")
    res = ping(net, net.server.ip4)
    assert res.returncode == 0, res.stdout + res.stderr
    # ICMP is key 1, and only ping sends it here.
    assert count_totals(net.server)[1] == {"packets": PING_N, "bytes": PING_N * PING_FRAME}


# --- an HTTP download --------------------------------------------------------------

BIG = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("www")
    (d / "big").write_bytes(os.urandom(BIG))
    os.chmod(d, 0o755)
    return d


def start_http_server(net, directory):
    net.server.popen([PYTHON, "-m", "http.server", str(HTTP_PORT), "--bind", net.server.ip4,
                      "--directory", str(directory)])
    assert wait_for(lambda: f":{HTTP_PORT} " in net.server.run(
        ["ss", "-Hltn", "sport", "=", f":{HTTP_PORT}"]).stdout, timeout=10), "http.server did not start"


def curl(net, out, *args):
    return ["curl", "-sS", "-o", str(out), *args, f"http://{net.server.ip4}:{HTTP_PORT}/big"]


@pytest.mark.parametrize("mode", MODES)
def test_http_download_counted_exactly(net, big_file, tmp_path, mode):
    """count on the client's end sees every frame the server's end sent,
    byte for byte: the server veth's own tx counters say how many."""
    start_http_server(net, big_file)
    attach(net.client, mode, "count")
    before = tx_counters(net.server)
    res = net.client.run(curl(net, tmp_path / "got"), timeout=60)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "got").read_bytes() == (big_file / "big").read_bytes()

    def settled():
        """Once count has taken in all the server sent (the odd MLD report
        may still be on its way): both sides' numbers."""
        after = tx_counters(net.server)
        totals = count_totals(net.client)
        sent = (after[0] - before[0], after[1] - before[1])
        return (sent, totals) if sum(t["packets"] for t in totals.values()) == sent[0] else None
    (sent_packets, sent_bytes), totals = wait_for(settled, timeout=5) or (None, count_totals(net.client))
    assert sent_packets is not None, ("count and the server's tx counters disagree", totals)
    nbytes = sum(t["bytes"] for t in totals.values())
    if mode == "native":
        # What veth counts for frames its peer takes in through native XDP
        # comes from that path, which leaves out the Ethernet header.
        assert nbytes == sent_bytes + ETH_HLEN * sent_packets
        # Full-size segments at MTU 9000 are 9,014-byte frames: most frames
        # had more than one buffer, and were counted whole.
        assert totals[6]["bytes"] / totals[6]["packets"] > FIRST_BUFFER_MAX
    else:
        # TSO/GSO super-packets arrive as one frame; veth counted each once.
        assert nbytes == sent_bytes
    assert totals[6]["bytes"] > BIG
    assert set(totals) <= {6, 58, 256}  # TCP, plus ND/MLD and ARP


# An HTTP server that sends one file at a steady 10 MB/s (256 KiB every
# 25 ms), so that the client's copy grows steadily and a stall shows.
PACED_SERVER = r"""
import socket, sys, time
addr, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
body = open(path, "rb").read()
srv = socket.create_server((addr, port))
while True:
    conn, _ = srv.accept()
    conn.recv(4096)
    conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
    for off in range(0, len(body), 262144):
        conn.sendall(body[off:off + 262144])
        time.sleep(0.025)
    conn.close()
"""


def file_size(path):
    return path.stat().st_size if path.exists() else 0


@pytest.mark.parametrize("mode", MODES)
def test_http_download_blocked_by_drop_tcp(net, big_file, tmp_path, mode):
    """A download under way stops when drop-tcp is attached to the client's
    end (its 9,014-byte segments are dropped) and finishes, intact, once it
    is gone."""
    net.server.popen([PYTHON, "-c", PACED_SERVER, net.server.ip4, str(HTTP_PORT), str(big_file / "big")])
    assert wait_for(lambda: f":{HTTP_PORT} " in net.server.run(
        ["ss", "-Hltn", "sport", "=", f":{HTTP_PORT}"]).stdout, timeout=10), "the server did not start"
    got = tmp_path / "got"
    proc = net.client.popen(curl(net, got, "--max-time", "60"))
    assert wait_for(lambda: file_size(got) > 1024 * 1024, timeout=10), "the download did not start"

    attach(net.client, mode, "drop-tcp")
    time.sleep(0.5)  # what was in flight lands
    stalled = file_size(got)
    time.sleep(1.5)  # 15 MB at the server's pace
    assert file_size(got) == stalled < BIG
    if mode == "native":
        stats = net.client.run(["ethtool", "-S", net.client.dev], check=True).stdout
        drops = sum(int(line.split(":")[1]) for line in stats.splitlines() if "_xdp_drops:" in line)
        assert drops > 0

    detach(net.client, mode)
    assert proc.wait(timeout=60) == 0
    assert got.read_bytes() == (big_file / "big").read_bytes()


# --- port-9090 ---------------------------------------------------------------------

SEND_AND_LISTEN = r"""
import socket, sys, time
dev, frame, want_dst = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL
s.bind((dev, 0))
s.settimeout(0.2)
s.send(frame)
deadline = time.monotonic() + 1.5
while time.monotonic() < deadline:
    try:
        got = s.recv(65536)
    except socket.timeout:
        continue
    if got[:6] == want_dst:
        print(got.hex())
"""


def send_and_listen(net, frame, tx_mac):
    """Send @frame out of the client's end; the frames to @tx_mac that came
    back within 1.5 s."""
    res = net.client.run([PYTHON, "-c", SEND_AND_LISTEN, net.client.dev, frame.hex(), tx_mac.hex()],
                         check=True)
    return [bytes.fromhex(line) for line in res.stdout.split()]


def jumbo_tcp(net, dport, size):
    """Ethernet / IPv4 / TCP (PSH, ACK) from the client to the server's
    @dport, @size bytes in all."""
    head_len = 14 + 20 + 20
    payload = (bytes(range(256)) * (size // 256 + 1))[:size - head_len]
    segment = wire.tcp(dport, flags=0x18, seq=1, ack=1, payload=payload)
    return (wire.eth(wire.ETH_P_IP, dst=wire.mac(net.server.mac), src=wire.mac(net.client.mac))
            + wire.ipv4(wire.TCP, segment, src=wire.ip4(net.client.ip4), dst=wire.ip4(net.server.ip4)))


@pytest.mark.parametrize("mode", MODES)
def test_port_9090_bounces_jumbo_segment(net, mode):
    tx_port, tx_mac = project.port_9090_config()
    other = 8080 if tx_port != 8080 else 8081
    attach(net.server, mode, "port-9090")
    segment = jumbo_tcp(net, tx_port, 8054)
    if mode == "native":
        # XDP_TX into a veth reaches the peer only if the peer runs an XDP
        # program, and a multi-buffer frame only if it is xdp.frags.
        assert send_and_listen(net, segment, tx_mac) == []
        res = ip_attach(net.client, "native", PASS_FRAGS)
        assert res.returncode == 0, res.stderr
    # The whole segment comes back, every buffer, with only the
    # destination MAC rewritten; TCP to another port does not.
    assert send_and_listen(net, segment, tx_mac) == [tx_mac + segment[6:]]
    assert send_and_listen(net, jumbo_tcp(net, other, 8054), tx_mac) == []


# --- the MTU, while a program is attached ------------------------------------------

def set_mtu(net, mtu):
    """Both ends; the first error, or None."""
    for ns in (net.client, net.server):
        res = ns.run(["ip", "link", "set", "dev", ns.dev, "mtu", str(mtu)])
        if res.returncode != 0:
            return res.stderr.strip()
    return None


@pytest.fixture
def net1500():
    with VethPair("ipxdp-mb") as pair:
        yield pair


@pytest.mark.parametrize("mode", MODES)
def test_mtu_raised_and_lowered_while_attached(net1500, mode):
    net = net1500
    prog_id = attach(net.server, mode, "drop-tcp")
    for mtu, size in ((9000, PING_SIZE), (1500, 1400), (9000, PING_SIZE)):
        assert set_mtu(net, mtu) is None
        assert ping(net, net.server.ip4, size=size, n=2).returncode == 0
        assert net.server.xdp()["prog"]["id"] == prog_id


def test_plain_section_keeps_the_mtu_down(net1500):
    """The contrast: with the plain section attached natively, the peer's
    MTU cannot go past one page."""
    net = net1500
    res = ip_attach(net.server, "native", paths.obj("drop-tcp"), section="drop-tcp")
    assert res.returncode == 0, res.stderr
    assert set_mtu(net, 9000) == "Error: mtu greater than device maximum."
    assert net.client.link()["max_mtu"] == 3506


def test_replacing_keeps_the_limit_of_the_first_attach(net1500):
    """veth sets its peer's largest MTU when a program is attached where
    there was none, and not when `ip -force` replaces one: xdp.frags put in
    place of the plain section still leaves the MTU at 3,506 until it is
    detached and attached again."""
    net = net1500
    drop_tcp = paths.obj("drop-tcp")
    assert ip_attach(net.server, "native", drop_tcp, section="drop-tcp").returncode == 0
    assert ip_attach(net.server, "native", drop_tcp, force=True).returncode == 0
    assert net.server.xdp()["prog"]["name"] == "xdp_drop_tcp_mb"
    assert set_mtu(net, 9000) == "Error: mtu greater than device maximum."
    detach(net.server, "native")
    attach(net.server, "native", "drop-tcp")
    assert set_mtu(net, 9000) is None
    # And back: the plain section may not replace xdp.frags at MTU 9000.
    res = ip_attach(net.server, "native", drop_tcp, section="drop-tcp", force=True)
    assert "veth: Peer MTU is too large to set XDP." in res.stderr
    assert net.server.xdp()["prog"]["name"] == "xdp_drop_tcp_mb"
