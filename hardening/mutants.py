# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
"""make mutants: the tests must fail on deliberately broken code.

    make mutants [ONLY='NAME ...']
    mutants.py --out DIR --clang CLANG --cflags 'BPF_CFLAGS' [--only NAME ...] [--list]

(mutants.py needs PYTHONPATH=pylib, which make sets.)  Each mutant is one
small, named edit to a COPY of include/, progs/ or scripts/ (never to the
real files), built into DIR/<name>/.  The tests that guard the broken property
are then run against the copy (IPXDP_BUILD points the tests at the mutant
objects, IPXDP_SCRIPTS at the mutant scripts) and must fail.  Before any
mutant, the same tests must pass on unmodified copies made the same way
(DIR/unmodified-include/, DIR/unmodified-scripts/), or a "kill" would prove
nothing: it could come from the copy rather than from the edit.

Every edit must match its target text exactly once, and a parser mutant
must change the code of at least one program, so a mutant can never
silently turn into the unmodified program when the sources move on.

One line per mutant: killed (with the test files that failed) or SURVIVED;
a mutant that survives or cannot be judged is followed by the command that
runs its tests against its copy again, from the repository root.  The exit
status is 1 if any mutant survives, 2 if a mutant or the baseline cannot be
built or run.
"""

import argparse
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import time

from ipxdp import paths, project

ROOT = paths.ROOT
PARSER_TESTS = ("test_programs.py", "test_differential.py", "test_hardening_sweep.py")
UNMODIFIED = "unmodified"  # the baseline's copies


class Mutant:
    def __init__(self, name, what, tests, edits=(), cflags=(), tree="include"):
        self.name, self.what, self.tests = name, what, tests
        self.edits, self.cflags, self.tree = edits, cflags, tree


# (file in the copied tree, exact text, replacement)
MUTANTS = [
    Mutant("vlan-skip-second",
           "looks behind one VLAN tag only and takes a second tag for the payload type",
           PARSER_TESTS,
           edits=[("parse.h", "for (int i = 0; i < VLAN_MAX_DEPTH; i++) {", "for (int i = 0; i < 1; i++) {"),
                  ("parse.h", "\tif (is_vlan(type))\n\t\treturn -1;\n", "\tif (0)\n\t\treturn -1;\n")]),
    Mutant("ipv4-ignore-options",
           "does not skip IPv4 options: the transport header is read at byte 20",
           PARSER_TESTS,
           edits=[("parse.h", "if (!cursor_advance(c, iph->ihl * 4 - sizeof(*iph)))", "if (!cursor_advance(c, 0))")]),
    Mutant("ports-from-fragments",
           "treats non-first IPv4 and IPv6 fragments as if a transport header followed",
           PARSER_TESTS,
           edits=[("parse.h", "info->has_l4 = !(iph->frag_off & IPV4_FRAG_OFFSET);",
                   "info->has_l4 = true;"),
                  ("parse.h", "\t\t\t\tinfo->has_l4 = false;\n\t\t\t\tgoto done;", "\t\t\t\tgoto done;")]),
    Mutant("ipv6-walk-early",
           "walks two IPv6 extension headers, then takes the next header type as the protocol",
           PARSER_TESTS,
           edits=[("parse.h", "for (int i = 0; i < IPV6_EXT_MAX_CHAIN; i++) {", "for (int i = 0; i < 2; i++) {"),
                  ("parse.h", "\tif (is_ipv6_ext(nexthdr))\n\t\treturn -1;\n", "\tif (0)\n\t\treturn -1;\n")]),
    Mutant("ah-8-byte-units",
           "measures the AH header in 8-byte units like the other extension headers",
           PARSER_TESTS,
           edits=[("parse.h", "if (!cursor_advance(c, ext->hdrlen * 4))", "if (!cursor_advance(c, ext->hdrlen * 8))")]),
    Mutant("ipv6-skip-unchecked",
           "never checks the skip past the last IPv6 extension header's options",
           PARSER_TESTS,
           edits=[("parse.h", "\tif (!cursor_advance(c, 0))\n\t\treturn -1;\n", "")]),
    Mutant("ihl-no-minimum",
           "accepts an IPv4 IHL below 5",
           PARSER_TESTS,
           edits=[("parse.h", "iph->version != 4 || iph->ihl < 5)", "iph->version != 4)")]),
    Mutant("replace-detach-then-attach",
           "xdp-attach --force detaches the old program, then attaches the new one",
           ("test_hardening_window.py",), tree="scripts",
           edits=[("xdp-attach", '\tif [ "$2" = 1 ]; then\n\t\topts=(-force)\n\tfi',
                   '\tif [ "$2" = 1 ]; then\n\t\tip link set dev "$dev" "$keyword" off\n\tfi')]),
    Mutant("stats-one-cpu",
           "xdp-stats reads the first CPU's counters only",
           ("test_hardening_count.py",), tree="scripts",
           edits=[("xdp-lib.sh", "for (cpu = 0; cpu < length(VAL) / 32; cpu++) {",
                   "for (cpu = 0; cpu < 1; cpu++) {")]),
    Mutant("textfile-in-place",
           "xdp-stats --textfile writes ipxdp.prom in place instead of renaming a finished file over it",
           ("test_metrics.py::test_the_textfile_is_replaced_in_one_rename",), tree="scripts",
           edits=[("xdp-stats", '\tmv -f -T -- "$textfile_tmp" "$dir/ipxdp.prom" 2>/dev/null ||',
                   '\tcat -- "$textfile_tmp" >"$dir/ipxdp.prom" 2>/dev/null ||')]),
    Mutant("labels-unescaped",
           "xdp-stats --prometheus writes label values without escaping quotes and backslashes",
           ("test_metrics.py::test_promtool_accepts_the_output",), tree="scripts",
           edits=[("xdp-stats", '\t\tif (c == "\\\\" || c == "\\"")', "\t\tif (0)")]),
    Mutant("sums-in-doubles",
           "xdp-stats adds the counters in doubles, exact only below 2^53",
           ("test_metrics.py::test_counters_above_2_53_are_exact",), tree="scripts",
           edits=[("xdp-lib.sh", "\tif (hi < 2097152)\n", "\tif (1)\n")]),
    Mutant("attach-without-lock",
           "xdp-attach does not take the per-interface lock",
           ("test_hardening_concurrency.py",), tree="scripts",
           edits=[("xdp-attach", '\nipxdp_lock "$dev" "$IPXDP_IFINDEX"\n', "\n: no lock\n")]),
    Mutant("eval-interface-name",
           "the interface name goes through the shell once (eval)",
           ("test_hardening_hostile.py::test_scripts_work_on_hostile_interface_names",), tree="scripts",
           edits=[("xdp-lib.sh", 'json=$(ip -j link show dev "$dev" 2>/dev/null) ||',
                   'json=$(eval "ip -j link show dev $dev" 2>/dev/null) ||')]),
    # Aimed at what test_scripts_attach.py and test_scripts_bad_input.py
    # check; each edit is anchored on one short line of the script.
    Mutant("attach-ignores-force",
           "xdp-attach replaces a different program in the same mode without --force",
           ("test_scripts_attach.py", "test_scripts_bad_input.py"), tree="scripts",
           edits=[("xdp-attach", 'if [ "$force" != 1 ]; then', "if false; then")]),
    Mutant("attach-no-section-check",
           "xdp-attach does not check that the object has the section asked for",
           ("test_scripts_bad_input.py",), tree="scripts",
           edits=[("xdp-attach", '[ -n "$function" ] ||', '[ -n "$function" ] || true ||')]),
    Mutant("detach-xdp-off",
           "xdp-detach removes with `xdp off`, which leaves a generic program attached",
           ("test_scripts_attach.py",), tree="scripts",
           edits=[("xdp-detach", 'ip link set dev "$dev" "$keyword" off', 'ip link set dev "$dev" xdp off')]),
    # The two sections of an object (test_scripts_multibuffer.py).
    Mutant("attach-plain-always",
           "xdp-attach never picks xdp.frags, even where the kernel has multi-buffer XDP",
           ("test_scripts_multibuffer.py",), tree="scripts",
           edits=[("xdp-attach", "\t0) section=$IPXDP_FRAGS_SECTION ;;", "\t0) ;;")]),
    Mutant("attach-fallback-silent",
           "xdp-attach falls back to the plain section without a note",
           ("test_scripts_multibuffer.py",), tree="scripts",
           edits=[("xdp-attach", '\t1) note "this kernel has no multi-buffer XDP', '\t1) : "')]),
    Mutant("attach-tag-only",
           "xdp-attach takes a program with our tag for ours, whatever its name",
           ("test_scripts_multibuffer.py",), tree="scripts",
           edits=[("xdp-attach", '\tours) [ "$t" = "$tag" ] && { [ "$name" = - ] ||',
                   '\tours) [ "$t" = "$tag" ] && { true ||')]),
    Mutant("status-tag-only",
           "xdp-status names a program by its tag alone",
           ("test_scripts_multibuffer.py",), tree="scripts",
           edits=[("xdp-status", "(if .name then $by_tag_name", "(if false then $by_tag_name")]),
    # blocklist: the allow list's precedence, and the atomic reload.
    Mutant("block-before-allow",
           "blocklist asks the allow list only for IPv6 sources the block list does not hold",
           ("test_blocklist.py",), tree="progs",
           edits=[("blocklist.c", "\ttrie = in_slot(&ipxdp_allow);\n\trule = trie ? bpf_map_lookup_elem(trie, &key) : NULL;\n",
                   "\ttrie = in_slot(&ipxdp_block);\n"
                   "\trule = trie && bpf_map_lookup_elem(trie, &key) ? NULL :\n"
                   "\t       ((trie = in_slot(&ipxdp_allow)) ? bpf_map_lookup_elem(trie, &key) : NULL);\n")]),
    Mutant("v4-block-before-allow",
           "xdp-block compiles a longer block prefix over an allow prefix of /24 or shorter into the IPv4 table",
           ("test_blocklist.py",), tree="scripts",
           edits=[("xdp-block", "d = fld[5] ? fld[4] : (a24 ? a24 : fld[4])", "d = fld[4]"),
                  ("xdp-block", "seg(x, la ? la : (a24 ? a24 : (lb ? lb : b24)))",
                   "seg(x, la ? la : (lb ? lb : (a24 ? a24 : b24)))")]),
    Mutant("v4-ranges-forward",
           "blocklist takes the first range of a group that starts at or below the address, not the last",
           ("test_blocklist.py",), tree="progs",
           edits=[("blocklist.c", "for (int i = 15; i >= 0; i--)", "for (int i = 0; i < 16; i++)")]),
    Mutant("v4-used-bit",
           "blocklist reads the bit of the wrong /16 in the IPv4 table's bitmap",
           ("test_blocklist.py",), tree="progs",
           edits=[("blocklist.c", "(1U << ((addr >> 16) & 31))", "(1U << ((addr >> 17) & 31))")]),
    Mutant("load-in-place",
           "xdp-block load writes the new prefixes into the live list and IPv4 table and swaps nothing",
           ("test_blocklist_reload.py::test_each_probe_sees_one_whole_list",), tree="scripts",
           edits=[("xdp-block", '-v trie="$new_id"', '-v trie="${SLOT[ipxdp_$list]}"'),
                  ("xdp-block", '\tswap_in "ipxdp_$list" "$path"\n\tswap_in ipxdp_v4 "$v4_path"\n', "\t: no swap\n"),
                  ("xdp-block", '-v table="$id"', '-v table="${SLOT[ipxdp_v4]:-$id}"')]),
    Mutant("verifier-hog",
           "looks behind 100 VLAN tags: correct for 0-2, but a quarter of the verifier's budget",
           ("test_hardening_verifier.py",),
           cflags=("-DVLAN_MAX_DEPTH=100",)),
]


class Failure(Exception):
    pass


def apply_edits(tree, edits):
    for name, old, new in edits:
        path = tree / name
        text = path.read_text()
        if text.count(old) != 1:
            raise Failure(f"{path}: the text to change occurs {text.count(old)} times, not once: {old!r}")
        path.write_text(text.replace(old, new))


def code_of(obj, section):
    """The bytes of @section in the ELF object @obj."""
    out = obj.with_suffix(f".{section}.bin")
    subprocess.run(["llvm-objcopy", "-O", "binary", f"--only-section={section}", str(obj), str(out)],
                   check=True, capture_output=True)
    data = out.read_bytes()
    out.unlink()
    return data


def build_objects(m, outdir, clang, cflags):
    """Copies include/ and progs/, applies the edits to the mutant's tree,
    builds every program's object (port-9090 and blocklist with the tree's
    build config) into @outdir."""
    inc, src = outdir / "include", outdir / "progs"
    shutil.copytree(ROOT / "include", inc)
    shutil.copytree(ROOT / "progs", src)
    apply_edits(outdir / m.tree, m.edits)
    tx_port, tx_mac = project.port_9090_config(ROOT / "build")
    config = project.blocklist_config(ROOT / "build")
    for f in ("port-9090.config", "blocklist.config"):
        shutil.copy(ROOT / "build" / f, outdir)
    changed = False
    for prog in project.PROGRAMS:
        obj = outdir / f"{prog}.o"
        extra = {"port-9090": [f"-DTX_PORT={tx_port}", "-DTX_MAC=" + ",".join(f"0x{b:02x}" for b in tx_mac)],
                 "blocklist": [f"-D{k}={v}U" for k, v in config.items()]}.get(prog, [])
        cmd = [clang, f"-I{inc}", *shlex.split(cflags), *m.cflags, *extra,
               "-c", str(src / f"{prog}.c"), "-o", str(obj)]
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if res.returncode:
            raise Failure(f"{m.name}: {prog}.o does not build: {res.stderr.strip().splitlines()[-1:]}")
        changed |= code_of(obj, prog) != code_of(ROOT / "build" / f"{prog}.o", prog)
    if not changed and (m.edits or m.cflags):
        raise Failure(f"{m.name}: the edit does not change any program's code")


def build_scripts(m, outdir):
    """Copies scripts/ and applies the edits.  The copy finds an object
    given by name where the scripts in the tree do ("xdp-attach eth0
    drop-tcp": ../build/drop-tcp.o from the script): @outdir/build is the
    tree's build/."""
    tree = outdir / "scripts"
    shutil.copytree(ROOT / "scripts", tree)
    apply_edits(tree, m.edits)
    (outdir / "build").symlink_to(ROOT / "build", target_is_directory=True)


def shown(path):
    """@path as a command line from the repository root spells it."""
    rel = os.path.relpath(path, ROOT)
    return shlex.quote(str(path) if rel.startswith("..") else rel)


def test_command(files, env):
    """The argv that runs the test @files against the copies in @env."""
    return [paths.PYTHON, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
            *(f"tests/{f}" for f in files)], env


def printed(argv, env):
    """The command line of test_command(), to run from the repository root."""
    return " ".join([f"{k}={shown(v)}" for k, v in env.items()] + [shlex.quote(a) for a in argv])


def run_tests(files, env_extra):
    """-> {file: (pytest exit status, output)}, one pytest run per file,
    from the repository root."""
    env = dict(os.environ, **env_extra)
    out = {}
    for f in files:
        argv, _ = test_command([f], env_extra)
        res = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        out[f] = (res.returncode, res.stdout + res.stderr)
    return out


def copies(m, mdir, args):
    """Makes the mutant's copy in @mdir; returns the environment that
    points the tests at it."""
    shutil.rmtree(mdir, ignore_errors=True)
    mdir.mkdir(parents=True)
    if m.tree in ("include", "progs"):
        build_objects(m, mdir, args.clang, args.cflags)
        return {"IPXDP_BUILD": str(mdir)}
    build_scripts(m, mdir)
    return {"IPXDP_SCRIPTS": str(mdir / "scripts")}


def main():
    ap = argparse.ArgumentParser(prog="mutants.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "build" / "mutants"))
    ap.add_argument("--clang", default="clang")
    ap.add_argument("--cflags", required=False, default="")
    ap.add_argument("--only", nargs="*", help="run only these mutants")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = ap.parse_args()
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    if args.list or not chosen:
        for m in MUTANTS:
            print(f"{m.name:<27} {m.what}  [{', '.join(m.tests)}]")
        return 0 if chosen or args.list else 2
    if not args.cflags and any(m.tree in ("include", "progs") for m in chosen):
        print("mutants: --cflags is needed to build parser mutants (run make mutants)", file=sys.stderr)
        return 2
    out = pathlib.Path(args.out).resolve()
    start = time.monotonic()

    # Baseline: the tests must pass on unmodified copies made the same way.
    try:
        base = Mutant(UNMODIFIED, "no edit", ())
        envs = {}
        for tree in sorted({m.tree for m in chosen}):
            base.tree = tree
            envs[tree] = copies(base, out / f"{UNMODIFIED}-{tree}", args)
    except Failure as e:
        print(f"mutants: the unmodified copy cannot be made: {e}", file=sys.stderr)
        return 2
    baseline = {}
    for m in chosen:
        for f in m.tests:
            baseline.setdefault(f, {}).update(envs[m.tree])
    for f, env in sorted(baseline.items()):
        rc, text = run_tests([f], env)[f]
        if rc != 0:
            print(text[-3000:])
            print(f"mutants: {f} fails on the unmodified copy (exit {rc}): mutants cannot be judged; "
                  f"again: {printed(*test_command([f], env))}", file=sys.stderr)
            return 2
    print(f"mutants: baseline passes on unmodified copies ({', '.join(sorted(baseline))})", flush=True)

    survived = errors = 0
    for m in chosen:
        try:
            env = copies(m, out / m.name, args)
        except Failure as e:
            print(f"  ERROR    {m.name}: {e}", flush=True)
            errors += 1
            continue
        results = run_tests(m.tests, env)
        failed = [f for f, (rc, _) in results.items() if rc == 1]
        odd = {f: rc for f, (rc, _) in results.items() if rc not in (0, 1)}
        again = f"    again: {printed(*test_command(m.tests, env))}"
        if odd:
            print(f"  ERROR    {m.name:<27} tests did not run: {odd}", flush=True)
            for f in odd:
                print("\n".join(results[f][1].splitlines()[-15:]))
            print(again)
            errors += 1
        elif len(failed) == len(m.tests):
            print(f"  killed   {m.name:<27} {m.what}; failed: {', '.join(failed)}", flush=True)
        else:
            passed = [f for f in m.tests if f not in failed]
            print(f"  SURVIVED {m.name:<27} {m.what}; passed: {', '.join(passed)}", flush=True)
            print(again)
            survived += 1
    print(f"mutants: {len(chosen)} mutants, {len(chosen) - survived - errors} killed, "
          f"{survived} survived, {errors} errors, {time.monotonic() - start:.0f} s")
    if survived or errors:
        print("mutants: one of them again, copies rebuilt: make mutants ONLY=NAME")
    return 2 if errors else 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
