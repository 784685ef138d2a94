# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""End to end: the programs on a real veth pair, real traffic, attached and
detached through scripts/, in native and in generic mode.

Client and server live in two network namespaces joined by a veth pair
(ipxdp.netns); the program under test sits on the server's end.
"""

import json
import pathlib
import re
import select
import struct
import subprocess
import time

import pytest

from ipxdp import paths, wire
from ipxdp.netns import VethPair, wait_for
from ipxdp.paths import PYTHON
HTTP_PORT = 8000
PAGE = b"ipxdp end-to-end test page\n"

MODES = ["native", "generic"]


def obj(name):
    return str(paths.obj(name))


def script(ns, name, *args, timeout=60):
    return ns.run([str(paths.script(name)), *args], timeout=timeout)


def attach(ns, mode, dev, name, path=None):
    """xdp-attach through the script; returns the program id."""
    res = script(ns, "xdp-attach", "--mode", mode, dev, path or obj(name))
    assert res.returncode == 0, res.stderr
    section = pathlib.Path(path).stem if path else name
    m = re.fullmatch(rf"{re.escape(dev)}: {re.escape(section)} attached \({mode}, prog id (\d+)\)\n",
                     res.stdout)
    assert m, res.stdout
    assert ns.link(dev)["xdp"]["prog"]["id"] == int(m.group(1))
    return int(m.group(1))


def detach(ns, dev, prog_id, mode, name):
    res = script(ns, "xdp-detach", dev)
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"{dev}: {name} detached ({mode}, prog id {prog_id})\n"
    assert "xdp" not in ns.link(dev)


@pytest.fixture
def net():
    with VethPair("ipxdp-e2e") as pair:
        yield pair


# --- drop-tcp -------------------------------------------------------------------

def start_http_server(net, tmp_path):
    (tmp_path / "page.txt").write_bytes(PAGE)
    net.server.popen([PYTHON, "-m", "http.server", str(HTTP_PORT), "--bind", "::",
                      "--directory", str(tmp_path)])
    listening = wait_for(lambda: f":{HTTP_PORT} " in net.server.run(
        ["ss", "-Hltn", "sport", "=", f":{HTTP_PORT}"]).stdout, timeout=10)
    assert listening, "http.server did not start"


def urls(net):
    return [f"http://{net.server.ip4}:{HTTP_PORT}/page.txt",
            f"http://[{net.server.ip6}]:{HTTP_PORT}/page.txt"]


def http_get_all(net, max_time):
    """GET every URL at once; [(curl exit code, body)] in URL order."""
    procs = [subprocess.Popen(net.client.command(
        ["curl", "-g", "-sS", "--max-time", str(max_time), "-o", "-", url]),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) for url in urls(net)]
    return [(p.wait(timeout=max_time + 10), p.stdout.read()) for p in procs]


def pings(net):
    return [net.client.run(["ping", "-c", "1", "-W", "2", ip]).returncode
            for ip in (net.server.ip4, net.server.ip6)]


@pytest.mark.parametrize("mode", MODES)
def test_drop_tcp_blocks_http_but_not_ping(net, tmp_path, mode):
    start_http_server(net, tmp_path)
    assert http_get_all(net, 5) == [(0, PAGE), (0, PAGE)]

    prog_id = attach(net.server, mode, net.server.dev, "drop-tcp")
    # curl 28: operation timed out (the SYNs vanish)
    assert [rc for rc, _ in http_get_all(net, 1.5)] == [28, 28]
    assert pings(net) == [0, 0]

    detach(net.server, net.server.dev, prog_id, mode, "xdp_drop_tcp")
    assert http_get_all(net, 5) == [(0, PAGE), (0, PAGE)]


# --- count ----------------------------------------------------------------------

ICMP_N, UDP_N, TCP_N = 5, 7, 3
UDP_PAYLOAD = 100
# Frame sizes as XDP sees them: Ethernet 14 + IPv4 20 + the rest.
ICMP_FRAME = 14 + 20 + 8 + 56        # ping's default 56 data bytes
UDP_FRAME = 14 + 20 + 8 + UDP_PAYLOAD
TCP_FRAME = 14 + 20 + 20             # hping3's bare SYN


def send_known_traffic(net):
    dst = net.server.ip4
    res = net.client.run(["ping", "-q", "-c", str(ICMP_N), "-i", "0.05", "-W", "2", dst])
    assert res.returncode == 0, res.stdout + res.stderr
    res = net.client.run([PYTHON, "-c", (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"for _ in range({UDP_N}): s.sendto(b'u' * {UDP_PAYLOAD}, ('{dst}', 9999))\n")])
    assert res.returncode == 0, res.stderr
    # hping3 exits 1 when it saw no replies it likes; the count is what matters.
    net.client.run(["hping3", "-q", "-S", "-p", "8001", "-c", str(TCP_N), "-i", "u20000", dst])


def stats_once(ns, dev):
    res = script(ns, "xdp-stats", "--once", "--json", dev)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("\n") == 1
    return json.loads(res.stdout)


@pytest.mark.parametrize("mode", MODES)
def test_count_reports_exact_numbers(net, mode):
    dev = net.server.dev
    attach(net.server, mode, dev, "count")
    before = stats_once(net.server, dev)
    assert before["interface"] == dev
    assert not {"icmp", "udp", "tcp"} & set(before["protocols"])

    send_known_traffic(net)

    def settled():
        now = stats_once(net.server, dev)["protocols"]
        return now if now.get("tcp", {}).get("packets") == TCP_N else None
    protocols = wait_for(settled, timeout=3) or stats_once(net.server, dev)["protocols"]
    assert protocols["icmp"] == {"packets": ICMP_N, "bytes": ICMP_N * ICMP_FRAME}
    assert protocols["udp"] == {"packets": UDP_N, "bytes": UDP_N * UDP_FRAME}
    assert protocols["tcp"] == {"packets": TCP_N, "bytes": TCP_N * TCP_FRAME}
    # ARP (non-ip) and the kernel's MLD reports (ipv6-icmp) may be there too;
    # nothing else is on this link.
    assert set(protocols) <= {"icmp", "udp", "tcp", "non-ip", "ipv6-icmp"}

    # The stream: totals plus rates; with no traffic the rates are zero.
    res = script(net.server, "xdp-stats", "--json", "--interval", "0.2", "--count", "2", dev)
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert line["interface"] == dev
        assert 0.1 < line["interval"] < 2
        assert line["protocols"]["tcp"] == {"packets": TCP_N, "bytes": TCP_N * TCP_FRAME,
                                            "packets_per_second": 0, "bytes_per_second": 0}


# --- port-9090 --------------------------------------------------------------------

def read_pcap(path):
    """Frames of a classic pcap file (as tcpdump -w writes it)."""
    data = pathlib.Path(path).read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    endian = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
    frames, off = [], 24
    while off + 16 <= len(data):
        _, _, caplen, _ = struct.unpack_from(endian + "IIII", data, off)
        frames.append(data[off + 16:off + 16 + caplen])
        off += 16 + caplen
    return frames


def tcp_dport(frame):
    """Destination port of an untagged IPv4/TCP frame, else None."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return None
    l4 = 14 + (frame[14] & 0x0f) * 4
    return struct.unpack_from("!H", frame, l4 + 2)[0]


class Capture:
    """tcpdump on the client's veth, TCP only, into a pcap file."""

    def __init__(self, ns, dev, path):
        self.path = path
        self.proc = ns.popen(["tcpdump", "-i", dev, "-n", "-U", "-s", "0",
                              "-w", str(path), "tcp"], stderr=subprocess.PIPE)
        ready, _, _ = select.select([self.proc.stderr], [], [], 10)
        assert ready and b"listening on" in self.proc.stderr.readline(), "tcpdump did not start"

    def frames(self):
        time.sleep(0.5)  # let anything bounced arrive
        self.proc.terminate()
        self.proc.wait(timeout=10)
        return read_pcap(self.path)


def send_syn(ns, dst, port):
    ns.run(["hping3", "-q", "-S", "-p", str(port), "-c", "1", dst])


@pytest.mark.parametrize("mode", MODES)
def test_port_9090_bounces_syn_with_rewritten_mac(net, tmp_path, mode, tx_config):
    tx_port, tx_mac = tx_config
    other_port = 8080 if tx_port != 8080 else 8081
    client_mac = wire.mac(net.client.mac)
    server_mac = wire.mac(net.server.mac)
    if mode == "native":
        # On veth, a frame sent with native XDP_TX reaches the peer only if
        # the peer runs an XDP program (docs/scripts.md says why).
        attach(net.client, "native", net.client.dev, "xdp-pass",
               path=str(paths.fixture("xdp-pass")))
    attach(net.server, mode, net.server.dev, "port-9090")

    cap = Capture(net.client, net.client.dev, tmp_path / "client.pcap")
    send_syn(net.client, net.server.ip4, tx_port)
    send_syn(net.client, net.server.ip4, other_port)
    frames = cap.frames()

    # Both directions are in the capture: what the client sent went to the
    # server's MAC, anything else came back.
    sent = [f for f in frames if f[0:6] == server_mac]
    back = [f for f in frames if f[0:6] != server_mac]
    assert all(f[6:12] == client_mac for f in sent)
    assert sorted(tcp_dport(f) for f in sent) == sorted([tx_port, other_port])
    syn = next(f for f in sent if tcp_dport(f) == tx_port)
    # Exactly one frame came back: the SYN to tx_port, byte for byte, with
    # only the destination MAC rewritten.  Nothing for the other port.
    assert back == [tx_mac + syn[6:]]


def test_native_xdp_tx_on_veth_needs_a_program_on_the_peer(net, tmp_path, tx_config):
    """Why the native port-9090 test attaches xdp-pass to the client."""
    tx_port, tx_mac = tx_config
    attach(net.server, "native", net.server.dev, "port-9090")
    cap = Capture(net.client, net.client.dev, tmp_path / "client.pcap")
    send_syn(net.client, net.server.ip4, tx_port)
    frames = cap.frames()
    # Only the SYN we sent, to the server's MAC: the bounce vanished.
    assert [(f[0:6], tcp_dport(f)) for f in frames] == [(wire.mac(net.server.mac), tx_port)]
