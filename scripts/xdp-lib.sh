# SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
# shellcheck shell=bash disable=SC2034 # the variables are for the scripts
#
# xdp-lib.sh - what the ipxdp scripts share.  Sourced, never run.
#
# Everything a user passes (interface names, paths, section names) is data:
# it is quoted everywhere, handed to tools as a separate argument after the
# keyword that introduces it, and never evaluated.
#
# How a script uses it (xdp-detach is the shortest complete example):
#
#   #!/bin/bash, the SPDX line, set -eu
#   IPXDP_PROG=xdp-foo             # its name, first word of every message
#   IPXDP_LIBDIR=... # @IPXDP_LIBDIR@ and the lines that source this file,
#                                  # as in xdp-detach
#   IPXDP_OPERANDS='DEV'           # the synopsis after the options
#   IPXDP_OPTIONS=(                # pairs: SPEC, one-line summary
#   	'-m --mode native|generic|offload' 'only a program in this mode'
#   	'-i --interval S'                  'seconds between two reports'
#   	'-j --json'                        'JSON instead of text'
#   )
#   about() { cat <<EOF ... EOF }  # what --help says between the
#                                  # "Usage:" line and the options
#   on_option()                    # called once per option given, with
#   {                              # NAME (the long name without "--")
#   	case $1 in                 # and, if it takes one, the VALUE
#   	mode) mode=$2 ;;
#   	interval) interval=$2 ;;
#   	json) json=1 ;;
#   	esac
#   }
#
#   ipxdp_parse_options "$@"       # -h/--help, -V/--version, "--", unknown
#                                  # options, missing values; leaves the
#                                  # operands in IPXDP_ARGS
#   (check the option values; usage_error MESSAGE exits 1)
#   ipxdp_want_args 1 1 "missing argument: DEV is required" \
#   	"too many arguments: expected DEV"
#   ipxdp_require_root
#   (then ipxdp_require_tools, naming every tool the script runs)
#   ipxdp_begin                    # the cleanup on exit, INT -> 130,
#                                  # TERM -> 143, and the temporary
#                                  # directory IPXDP_TMP
#
# A SPEC is the short option (optional) and the long one, then what the
# option takes, if anything: a placeholder ("S", "N") or the choices
# ("native|generic|offload": the placeholder is then the long name in
# capitals, and a missing value names the choices).  "--mode=VALUE" works
# too.  Options may come before, between and after the operands; "--" ends
# them.  --help and --version work without root.
#
# A script with subcommands also sets IPXDP_COMMANDS, pairs of
# "NAME OPERANDS" and a one-line summary, which --help lists.  After
# ipxdp_parse_options, ipxdp_command moves the first operand, the command's
# name, into IPXDP_COMMAND (a missing or unknown one is a usage error), and
# ipxdp_run_command calls the script's function cmd_NAME ("-" in NAME
# becomes "_") with the remaining operands; each cmd_ function checks its
# own with ipxdp_want_args.
#
# Errors: die "$EX_INPUT" "MESSAGE" prints "xdp-foo: MESSAGE" on stderr and
# exits 2; the EX_* codes are below, the same for every script.
#
# The options' reference is the script's man page, man/xdp-foo.8; --help is
# the summary and names the page.  Its SYNOPSIS repeats --help's "Usage:"
# line (plus "[--]") and OPTIONS has one heading per option spelled as in
# --help ("-m, --mode MODE"): tests/test_option_text.py compares them, and
# the option's text is written only there.  A new script also goes into
# IPXDP_SCRIPTS in mk/install.mk, and the tools it needs into the Depends
# of debian/control.

IPXDP_VERSION=0.1.0

# Where the built objects are: "xdp-attach eth0 drop-tcp" means
# "$IPXDP_OBJDIR/drop-tcp.o".  `make install` rewrites this line.
IPXDP_OBJDIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)/build # @IPXDP_OBJDIR@

# The section of an object's multi-buffer program, and the program that
# ipxdp_multibuffer_ok loads (probe/xdp-frags-probe.c): not an object, so
# it is installed next to this file.  `make install` rewrites this line.
# The tests make the probe fail by running a copy of the scripts next to a
# build/ of their own (tests/test_scripts_multibuffer.py); nothing else
# changes where it is.
IPXDP_FRAGS_SECTION=xdp.frags
IPXDP_FRAGS_PROBE=$IPXDP_OBJDIR/probe/xdp-frags-probe.o # @IPXDP_FRAGS_PROBE@

# Lock files: one per (network namespace, ifindex), see ipxdp_lock.
IPXDP_RUNDIR=/run/ipxdp

# Exit codes, the same for every script (docs/scripts.md has the table).
EX_OK=0        # done, or nothing needed doing
EX_USAGE=1     # bad command line
EX_INPUT=2     # bad input: unknown interface, object, section...
EX_KERNEL=3    # the kernel refused: verifier, mode not supported...
EX_CONFLICT=4  # another program is attached (same mode without --force,
               # or another mode)
EX_BUSY=5      # another xdp-attach/xdp-detach held the interface for 5 s
EX_PRIV=6      # needs root
EX_DEPS=7      # a tool the scripts need is not installed

IPXDP_EXIT_CODES_HELP="Exit codes:
  0  success, or nothing to do (already attached, nothing attached)
  1  usage error (unknown option, missing or extra arguments)
  2  bad input (unknown interface, missing object, not a BPF object,
     unknown section, no count program on the interface)
  3  the kernel refused (verifier, mode not supported by the driver,
     MTU too large for XDP, ...)
  4  conflict: a different program is attached in that mode (use
     --force), or a program is attached in another mode (detach first),
     or it did not get the pinned maps (detached again, or the copy that
     was there put back), or the pins lack some of its maps (xdp-block
     migrate)
  5  busy: another xdp-attach/xdp-detach held the interface for 5 s
  6  needs root (uid 0 with CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_BPF)
  7  a required tool is missing"

# Filled in by ipxdp_cleanup; the sourcing script's EXIT trap runs it.
IPXDP_LOCK_FD=
IPXDP_LOCK_FILE=
IPXDP_TMP=

# --- messages -------------------------------------------------------------

# A value as it can be shown on one line: as is when it is plain, else
# shell-quoted so that spaces, control characters and newlines are visible.
ipxdp_q()
{
	if [[ $1 =~ ^[][A-Za-z0-9_.,:/@%+=~^-]+$ ]]; then
		printf '%s' "$1"
	else
		printf '%s' "${1@Q}"
	fi
}

# die CODE MESSAGE...: one line on stderr, then exit CODE.
die()
{
	local code=$1
	shift
	printf '%s: %s\n' "$IPXDP_PROG" "$*" >&2
	exit "$code"
}

usage_error()
{
	die "$EX_USAGE" "$* (see $IPXDP_PROG --help)"
}

note()
{
	printf '%s: %s\n' "$IPXDP_PROG" "$*" >&2
}

ipxdp_version()
{
	printf 'ipxdp %s\n' "$IPXDP_VERSION"
}

# --- the command line ----------------------------------------------------
#
# The skeleton described at the top: the script fills in IPXDP_OPERANDS,
# IPXDP_OPTIONS (and IPXDP_COMMANDS), about and on_option.

IPXDP_OPERANDS=
IPXDP_OPTIONS=()
IPXDP_COMMANDS=()
IPXDP_ARGS=()
IPXDP_COMMAND=

# "a", "a or b", "a, b or c".
ipxdp_or()
{
	local out=$1
	shift
	while [ $# -gt 1 ]; do
		out+=", $1"
		shift
	done
	if [ $# -eq 1 ]; then
		out+=" or $1"
	fi
	printf '%s' "$out"
}

# Splits an option's SPEC into IPXDP_SPEC_SHORT (may be empty),
# IPXDP_SPEC_LONG and IPXDP_SPEC_VALUE (empty for an option without value).
ipxdp_spec()
{
	local words
	read -r -a words <<<"$1"
	IPXDP_SPEC_SHORT=
	if [[ ${words[0]} != --* ]]; then
		IPXDP_SPEC_SHORT=${words[0]}
		words=("${words[@]:1}")
	fi
	IPXDP_SPEC_LONG=${words[0]}
	IPXDP_SPEC_VALUE=${words[1]-}
}

# What --help shows after the option: the placeholder, or for choices the
# long name in capitals ("--mode MODE").
ipxdp_spec_placeholder()
{
	if [[ $IPXDP_SPEC_VALUE == *'|'* ]]; then
		local name=${IPXDP_SPEC_LONG#--}
		printf '%s' "${name^^}"
	else
		printf '%s' "$IPXDP_SPEC_VALUE"
	fi
}

# The choices of IPXDP_SPEC_VALUE, for messages: "native, generic or offload".
ipxdp_spec_choices()
{
	local choices
	IFS='|' read -r -a choices <<<"$IPXDP_SPEC_VALUE"
	ipxdp_or "${choices[@]}"
}

# Finds the option ARG (-m, --mode, --mode=VALUE) in IPXDP_OPTIONS and
# leaves its SPEC split as ipxdp_spec does; fails for an unknown option.
ipxdp_find_option()
{
	local arg=$1 i
	for ((i = 0; i < ${#IPXDP_OPTIONS[@]}; i += 2)); do
		ipxdp_spec "${IPXDP_OPTIONS[i]}"
		if [ "$arg" = "$IPXDP_SPEC_LONG" ] ||
			{ [ -n "$IPXDP_SPEC_SHORT" ] && [ "$arg" = "$IPXDP_SPEC_SHORT" ]; } ||
			{ [ -n "$IPXDP_SPEC_VALUE" ] && [[ $arg == "$IPXDP_SPEC_LONG="* ]]; }; then
			return 0
		fi
	done
	return 1
}

# The command line: options go to on_option, -h and -V print and exit 0,
# the operands end up in IPXDP_ARGS.  A bad option is a usage error.
ipxdp_parse_options()
{
	local arg name
	IPXDP_ARGS=()
	while [ $# -gt 0 ]; do
		arg=$1
		case $arg in
		-h | --help)
			ipxdp_usage
			exit "$EX_OK"
			;;
		-V | --version)
			ipxdp_version
			exit "$EX_OK"
			;;
		--)
			shift
			IPXDP_ARGS+=("$@")
			return 0
			;;
		-?*) ;;
		*)
			IPXDP_ARGS+=("$arg")
			shift
			continue
			;;
		esac
		ipxdp_find_option "$arg" || usage_error "unknown option $(ipxdp_q "$arg")"
		name=${IPXDP_SPEC_LONG#--}
		if [ -z "$IPXDP_SPEC_VALUE" ]; then
			on_option "$name"
			shift
		elif [[ $arg == --*=* ]]; then
			on_option "$name" "${arg#*=}"
			shift
		else
			if [ $# -lt 2 ]; then
				if [[ $IPXDP_SPEC_VALUE == *'|'* ]]; then
					usage_error "$arg needs a value: $(ipxdp_spec_choices)"
				fi
				usage_error "$arg needs a value"
			fi
			on_option "$name" "$2"
			shift 2
		fi
	done
}

# ipxdp_want_args MIN MAX TOO_FEW TOO_MANY: a usage error unless there are
# MIN to MAX operands.
ipxdp_want_args()
{
	if [ "${#IPXDP_ARGS[@]}" -lt "$1" ]; then
		usage_error "$3"
	fi
	if [ "${#IPXDP_ARGS[@]}" -gt "$2" ]; then
		usage_error "$4"
	fi
}

# The first operand names a command of IPXDP_COMMANDS: it moves from
# IPXDP_ARGS to IPXDP_COMMAND.
ipxdp_command()
{
	local i names=()
	for ((i = 0; i < ${#IPXDP_COMMANDS[@]}; i += 2)); do
		names+=("${IPXDP_COMMANDS[i]%% *}")
	done
	if [ "${#IPXDP_ARGS[@]}" -eq 0 ]; then
		usage_error "missing command: $(ipxdp_or "${names[@]}")"
	fi
	IPXDP_COMMAND=${IPXDP_ARGS[0]}
	for ((i = 0; i < ${#names[@]}; i++)); do
		if [ "${names[i]}" = "$IPXDP_COMMAND" ]; then
			IPXDP_ARGS=("${IPXDP_ARGS[@]:1}")
			return 0
		fi
	done
	usage_error "unknown command $(ipxdp_q "$IPXDP_COMMAND"): use $(ipxdp_or "${names[@]}")"
}

# Calls cmd_NAME (dashes in NAME become "_") with the remaining operands.
ipxdp_run_command()
{
	"cmd_${IPXDP_COMMAND//-/_}" "${IPXDP_ARGS[@]}"
}

# Where the full reference is: the page next to the scripts in the source
# tree, else the installed one.
ipxdp_manual()
{
	local page=$IPXDP_LIBDIR/../man/$IPXDP_PROG.8
	if [ -f "$page" ]; then
		printf 'man -l %s' "$(ipxdp_q "$(realpath -- "$page")")"
	else
		printf 'man 8 %s' "$IPXDP_PROG"
	fi
}

# Pairs of NAME and TEXT as an indented two-column list.
ipxdp_print_rows()
{
	local rows=("$@") i width=0
	for ((i = 0; i < ${#rows[@]}; i += 2)); do
		if [ "${#rows[i]}" -gt "$width" ]; then
			width=${#rows[i]}
		fi
	done
	for ((i = 0; i < ${#rows[@]}; i += 2)); do
		printf '  %-*s  %s\n' "$width" "${rows[i]}" "${rows[i + 1]}"
	done
}

# --help: synopsis, about, commands, options, the manual, the exit codes.
ipxdp_usage()
{
	local i synopsis='' tag rows=()
	for ((i = 0; i < ${#IPXDP_OPTIONS[@]}; i += 2)); do
		ipxdp_spec "${IPXDP_OPTIONS[i]}"
		synopsis+="[$IPXDP_SPEC_LONG${IPXDP_SPEC_VALUE:+ $IPXDP_SPEC_VALUE}] "
		tag="${IPXDP_SPEC_SHORT:-   }${IPXDP_SPEC_SHORT:+,} $IPXDP_SPEC_LONG"
		if [ -n "$IPXDP_SPEC_VALUE" ]; then
			tag+=" $(ipxdp_spec_placeholder)"
		fi
		rows+=("$tag" "${IPXDP_OPTIONS[i + 1]}")
	done
	rows+=("-h, --help" "show this help and exit"
		"-V, --version" "show the version and exit"
		"--" "end of options")

	printf 'Usage: %s %s%s\n\n' "$IPXDP_PROG" "$synopsis" "$IPXDP_OPERANDS"
	about
	if [ "${#IPXDP_COMMANDS[@]}" -gt 0 ]; then
		printf '\nCommands:\n'
		ipxdp_print_rows "${IPXDP_COMMANDS[@]}"
	fi
	printf '\nOptions:\n'
	ipxdp_print_rows "${rows[@]}"
	printf '\nEvery option in full, the output and the rules:\n  %s\n' "$(ipxdp_manual)"
	printf '\n%s\n' "$IPXDP_EXIT_CODES_HELP"
}

# Arms what every run needs before it changes anything: ipxdp_cleanup on
# exit (the lock, the temporary directory), exit codes 130 and 143 for
# SIGINT and SIGTERM (so that the cleanup runs), and IPXDP_TMP.
ipxdp_begin()
{
	trap ipxdp_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	ipxdp_tmpdir
}

# --- cleanup --------------------------------------------------------------

ipxdp_cleanup()
{
	ipxdp_unlock
	if [ -n "$IPXDP_TMP" ]; then
		rm -rf -- "$IPXDP_TMP"
		IPXDP_TMP=
	fi
}

# A private temporary directory, IPXDP_TMP, that ipxdp_cleanup removes.
ipxdp_tmpdir()
{
	IPXDP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/ipxdp.XXXXXXXX") ||
		die "$EX_DEPS" "cannot create a temporary directory"
}

# --- environment ----------------------------------------------------------

# uid 0 with CAP_NET_ADMIN (12), CAP_SYS_ADMIN (21) and, on kernels that
# have it, CAP_BPF (39).  SYS_ADMIN is what turns a program id into its
# name and tag, and what the private bpffs mount needs.
ipxdp_require_root()
{
	local eff last bit
	local need=(12 21)

	if [ "$(id -u)" != 0 ]; then
		die "$EX_PRIV" "needs root (uid 0 with CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_BPF)"
	fi
	last=$(cat /proc/sys/kernel/cap_last_cap 2>/dev/null || echo 0)
	if [ "$last" -ge 39 ]; then
		need+=(39)
	fi
	eff=$(awk '$1 == "CapEff:" { print $2 }' "/proc/$$/status")
	for bit in "${need[@]}"; do
		if (((16#$eff >> bit & 1) == 0)); then
			die "$EX_PRIV" "needs root: running as uid 0 but without CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_BPF"
		fi
	done
}

ipxdp_require_tools()
{
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 ||
			die "$EX_DEPS" "missing tool: $tool (Debian: apt-get install iproute2 bpftool jq binutils util-linux)"
	done
}

# --- interfaces -----------------------------------------------------------

# The kernel's rule (dev_valid_name): 1 to 15 bytes, not "." or "..", no
# "/", ":" or whitespace.
ipxdp_valid_ifname()
{
	local name=$1
	[ -n "$name" ] && [ "${#name}" -le 15 ] &&
		[ "$name" != . ] && [ "$name" != .. ] &&
		[[ $name != *[/:[:space:]]* ]] &&
		[[ $name != *[[:cntrl:]]* ]]
}

# Checks that DEV names an interface of this network namespace and sets
# IPXDP_IFINDEX.
ipxdp_check_dev()
{
	local dev=$1 json

	ipxdp_valid_ifname "$dev" ||
		die "$EX_INPUT" "$(ipxdp_q "$dev"): unknown interface (not a valid interface name: 1-15 bytes, no '/', ':' or whitespace)"
	json=$(ip -j link show dev "$dev" 2>/dev/null) ||
		die "$EX_INPUT" "$(ipxdp_q "$dev"): unknown interface (not in this network namespace)"
	IPXDP_IFINDEX=$(jq -r '.[0].ifindex' <<<"$json")
	[[ $IPXDP_IFINDEX =~ ^[0-9]+$ ]] ||
		die "$EX_INPUT" "$(ipxdp_q "$dev"): cannot read its ifindex"
}

# The driver's name, for messages.
ipxdp_driver()
{
	local drv=
	case $1 in
	-*) ;; # ethtool would take it for an option
	*) drv=$(ethtool -i "$1" 2>/dev/null | awk '$1 == "driver:" { print $2 }') || true ;;
	esac
	if [ -z "$drv" ]; then
		drv=$(ip -j -d link show dev "$1" 2>/dev/null |
			jq -r '.[0].linkinfo.info_kind // empty' 2>/dev/null) || true
	fi
	if [ -z "$drv" ] && [ "$1" = lo ]; then
		drv=loopback
	fi
	printf '%s' "${drv:-unknown}"
}

# native -> xdpdrv, ... (ip link's keywords).
ipxdp_mode_keyword()
{
	case $1 in
	native) echo xdpdrv ;;
	generic) echo xdpgeneric ;;
	offload) echo xdpoffload ;;
	esac
}

# jq's "attached", for one interface of `ip -j -d link show`: an object
# {mode, id, name, tag} per attached program, mode "native", "generic" or
# "offload" (the numbers 1, 2, 3 in ip's JSON), name and tag null when ip
# does not know them.  ip shows one program as "prog", several (one per
# mode) as "attached".
IPXDP_JQ_ATTACHED='def attached: (.xdp // {})
	| (.attached // (if .prog then [{mode: .mode, prog: .prog}] else [] end))
	| .[]
	| {mode: ({"1": "native", "2": "generic", "3": "offload"}[.mode | tostring]
	          // "mode-\(.mode)"),
	   id: .prog.id, name: (.prog.name // null), tag: (.prog.tag // null)};'

# What is attached to DEV: one line per program, "MODE<TAB>ID<TAB>NAME<TAB>TAG"
# ("-" for an unknown name or tag).  Nothing attached: no output.
ipxdp_attached()
{
	local json
	json=$(ip -j -d link show dev "$1") ||
		die "$EX_INPUT" "$(ipxdp_q "$1"): unknown interface"
	jq -r "$IPXDP_JQ_ATTACHED"'
		.[0] | attached
		| [.mode, (.id | tostring), (.name // "-"), (.tag // "-")] | @tsv' <<<"$json"
}

# --- the lock -------------------------------------------------------------

# One xdp-attach/xdp-detach at a time per interface.  The lock file is
# /run/ipxdp/<netns inode>.<ifindex>.lock, locked with flock(1); a second
# caller waits up to 5 s, then fails with "busy".
#
# The holder deletes the file when it is done, so no lock files pile up.
# That is safe because a caller that got the lock checks that the file it
# locked is still the one at that path; if the holder deleted it meanwhile,
# it opens the new one and locks again.
ipxdp_lock()
{
	local dev=$1 ifindex=$2 ns file deadline left
	ns=$(stat -L -c %i /proc/self/ns/net) ||
		die "$EX_DEPS" "cannot read the network namespace of this process"
	[ -d "$IPXDP_RUNDIR" ] || mkdir -m 0700 -- "$IPXDP_RUNDIR" 2>/dev/null ||
		[ -d "$IPXDP_RUNDIR" ] ||
		die "$EX_DEPS" "cannot create $IPXDP_RUNDIR"
	[ -w "$IPXDP_RUNDIR" ] || die "$EX_DEPS" "cannot write lock files in $IPXDP_RUNDIR"
	file=$IPXDP_RUNDIR/$ns.$ifindex.lock
	deadline=$((SECONDS + 5))
	while :; do
		exec {IPXDP_LOCK_FD}>>"$file" ||
			die "$EX_DEPS" "cannot open the lock file $file"
		left=$((deadline - SECONDS))
		if ((left < 1)); then
			left=1
		fi
		if ! flock -w "$left" "$IPXDP_LOCK_FD"; then
			exec {IPXDP_LOCK_FD}>&-
			IPXDP_LOCK_FD=
			die "$EX_BUSY" "$(ipxdp_q "$dev"): busy: another xdp-attach or xdp-detach has held it for 5 s"
		fi
		if [ "$(stat -L -c %d:%i -- "/proc/$$/fd/$IPXDP_LOCK_FD")" = \
			"$(stat -c %d:%i -- "$file" 2>/dev/null)" ]; then
			IPXDP_LOCK_FILE=$file
			return 0
		fi
		exec {IPXDP_LOCK_FD}>&- # deleted by its holder: lock the new one
	done
}

ipxdp_unlock()
{
	if [ -n "$IPXDP_LOCK_FD" ]; then
		rm -f -- "$IPXDP_LOCK_FILE"
		exec {IPXDP_LOCK_FD}>&-
		IPXDP_LOCK_FD=
		IPXDP_LOCK_FILE=
	fi
}

# --- objects --------------------------------------------------------------

# OBJ as given -> a path: anything with a "/" or ending in ".o" is a path,
# anything else names an object in $IPXDP_OBJDIR.  Sets IPXDP_OBJ to an
# absolute path of an existing, readable regular file.
ipxdp_resolve_obj()
{
	local arg=$1 path known
	if [ -z "$arg" ]; then
		die "$EX_INPUT" "empty object name"
	fi
	if [[ $arg == */* || $arg == *.o ]]; then
		path=$arg
		[ -e "$path" ] || die "$EX_INPUT" "$(ipxdp_q "$arg"): no such file"
	else
		path=$IPXDP_OBJDIR/$arg.o
		if [ ! -e "$path" ]; then
			known=$(ipxdp_known_objects)
			die "$EX_INPUT" "unknown object $(ipxdp_q "$arg"): no $(ipxdp_q "$path") (objects there: ${known:-none; run make})"
		fi
	fi
	[ -f "$path" ] || die "$EX_INPUT" "$(ipxdp_q "$arg"): not a regular file"
	[ -r "$path" ] || die "$EX_INPUT" "$(ipxdp_q "$arg"): not readable"
	IPXDP_OBJ=$(realpath -- "$path") ||
		die "$EX_INPUT" "$(ipxdp_q "$arg"): cannot resolve the path"
}

# The object names in $IPXDP_OBJDIR, comma-separated.
ipxdp_known_objects()
{
	local f names=()
	for f in "$IPXDP_OBJDIR"/*.o; do
		[ -f "$f" ] || continue
		f=${f##*/}
		names+=("${f%.o}")
	done
	local IFS=,
	printf '%s' "${names[*]}" | sed 's/,/, /g'
}

# Checks that OBJ is an ELF file for the BPF machine; dies otherwise.
ipxdp_check_bpf_elf()
{
	local obj=$1 shown=$2 header machine
	header=$(LC_ALL=C readelf -h -- "$obj" 2>/dev/null) ||
		die "$EX_INPUT" "$shown: not a BPF object file (not ELF at all)"
	machine=$(awk -F: '$1 ~ /^ *Machine$/ { sub(/^ +/, "", $2); print $2 }' <<<"$header")
	[ "$machine" = "Linux BPF" ] ||
		die "$EX_INPUT" "$shown: not a BPF object file (ELF for ${machine:-an unknown machine})"
}

# The program sections of OBJ, one "SECTION<TAB>FUNCTION" line each, in
# file order: executable sections other than .text (which only holds
# subprograms) that are not empty, with the global function in each.
ipxdp_obj_programs()
{
	local obj=$1 sections symbols
	sections=$(LC_ALL=C readelf -S -W -- "$obj") || return 1
	symbols=$(LC_ALL=C readelf -s -W -- "$obj") || return 1
	awk -v OFS='\t' '
		FNR == 1 { file++ }
		# readelf -S: "[Nr] Name Type Address Off Size ES Flg Lk Inf Al"
		file == 1 && /^ *\[ *[0-9]+\]/ {
			line = $0
			sub(/^ *\[ */, "", line)
			idx = line + 0
			sub(/^[0-9]+\] /, "", line)
			# A name may hold spaces: the columns after it are fixed,
			# so match those at the end and take the name before them.
			if (!match(line, / +PROGBITS +[0-9a-f]+ +[0-9a-f]+ +[0-9a-f]+ +[0-9a-f]+ +[A-Z]*X[A-Z]* +[0-9]+ +[0-9]+ +[0-9]+$/))
				next
			split(substr(line, RSTART), f, / +/)
			sec = substr(line, 1, RSTART - 1)
			if (sec != ".text" && f[5] !~ /^0+$/) {
				order[++nsec] = idx
				name[idx] = sec
			}
		}
		# readelf -s: "Num: Value Size Type Bind Vis Ndx Name"
		file == 2 && $4 == "FUNC" && $5 == "GLOBAL" && ($7 in name) &&
		    !($7 in fn) {
			fn[$7] = $8
		}
		END {
			for (i = 1; i <= nsec; i++) {
				idx = order[i]
				if (idx in fn)
					print name[idx], fn[idx]
			}
		}' <(printf '%s\n' "$sections") <(printf '%s\n' "$symbols")
}

# The first 15 bytes of FUNCTION: the name the kernel keeps for a program
# (BPF_OBJ_NAME_LEN), which is what ip shows.
ipxdp_kernel_name()
{
	printf '%s' "${1:0:15}"
}

# OBJ's two program sections when it carries one program twice, a plain
# section and IPXDP_FRAGS_SECTION (as every ipxdp object does): one line
# "PLAIN<TAB>PLAIN_FUNCTION<TAB>FRAGS_FUNCTION" from PROGRAMS (the output
# of ipxdp_obj_programs); nothing for any other object.
ipxdp_family()
{
	awk -F'\t' -v OFS='\t' -v frags="$IPXDP_FRAGS_SECTION" '
		$1 == frags { f = $2; nf++; next }
		{ plain = $1; pf = $2; np++ }
		END { if (nf == 1 && np == 1) print plain, pf, f }' <<<"$1"
}

# Loads programs the way ip does when it attaches one: each section on its
# own (ip loads only the section it attaches), generic mode on the
# loopback of a network namespace made for it, with a bpffs of its own in
# a private mount namespace.  Whatever happens, nothing stays attached,
# pinned or loaded afterwards.
#
# Arguments: INDEX OBJ SECTION FUNCTION, for each program.  Prints
# "INDEX<TAB>FUNCTION<TAB>TAG" for each, TAG "-" when the kernel refused
# it; what ip said then goes to the file named by IPXDP_LOAD_ERR (when
# set).
ipxdp_load_sections()
{
	local err=${IPXDP_LOAD_ERR:-/dev/null}
	[ -d /sys/fs/bpf ] ||
		die "$EX_DEPS" "/sys/fs/bpf is missing: is sysfs mounted?"
	# The loads pin nothing that lasts: maps pinned by name (blocklist's) go
	# into the throwaway bpffs, never into TC_BPF_MNT's.
	# shellcheck disable=SC2016 # the inner script expands its own variables
	env -u TC_BPF_MNT unshare --mount --propagation private --net -- bash -c '
		set -u
		mount -t bpf ipxdp /sys/fs/bpf || exit 1
		while [ $# -ge 4 ]; do
			i=$1 obj=$2 sec=$3 fn=$4
			shift 4
			tag=-
			if said=$(ip link set dev lo xdpgeneric obj "$obj" sec "$sec" 2>&1 >/dev/null); then
				tag=$(ip -j -d link show dev lo | jq -r ".[0].xdp.prog.tag // \"-\"")
				ip link set dev lo xdpgeneric off
			else
				printf "%s\n" "$said" >&2
			fi
			printf "%s\t%s\t%s\n" "$i" "$fn" "$tag"
		done
	' ipxdp-load "$@" 2>"$err"
}

# Every program section of each OBJ, through ipxdp_load_sections (INDEX:
# the position of the object in the arguments, from 0).
ipxdp_load_tags()
{
	local i=0 obj sec fn args=()
	for obj in "$@"; do
		while IFS=$'\t' read -r sec fn; do
			[ -n "$fn" ] && args+=("$i" "$obj" "$sec" "$fn")
		done < <(ipxdp_obj_programs "$obj" 2>/dev/null || true)
		i=$((i + 1))
	done
	if [ "${#args[@]}" -gt 0 ]; then
		ipxdp_load_sections "${args[@]}"
	fi
}

# Whether the kernel loads multi-buffer XDP programs (section xdp.frags,
# which makes libbpf pass BPF_F_XDP_HAS_FRAGS; Linux 5.18 and later): ip
# loads IPXDP_FRAGS_PROBE, a program that passes every frame and needs
# nothing else, as ipxdp_load_sections does.  Returns 0 if it loads, 1 if
# the kernel refuses it with EINVAL, as a kernel without multi-buffer XDP
# refuses the flag, and 2 if something else went wrong.  What ip said is
# left in $IPXDP_TMP/probe.err.
ipxdp_multibuffer_ok()
{
	local out err=$IPXDP_TMP/probe.err
	[ -r "$IPXDP_FRAGS_PROBE" ] ||
		die "$EX_DEPS" "missing $(ipxdp_q "$IPXDP_FRAGS_PROBE"), the multi-buffer probe (reinstall ipxdp, or run make)"
	out=$(IPXDP_LOAD_ERR=$err ipxdp_load_sections 0 "$IPXDP_FRAGS_PROBE" \
		"$IPXDP_FRAGS_SECTION" xdp_frags_probe) || true
	case $out in
	*$'\t'-)
		grep -q 'Invalid argument' -- "$err" && return 1
		return 2
		;;
	*$'\t'?*) return 0 ;;
	esac
	return 2
}

# The verifier's last words from libbpf's output in FILE: the lines of the
# last program load log, without the statistics line, at most 4.
ipxdp_verifier_tail()
{
	awk '
		/-- BEGIN PROG LOAD LOG --/ { n = 0; inlog = 1; next }
		/-- END PROG LOAD LOG --/ { inlog = 0; next }
		inlog && !/^processed [0-9]+ insns/ && NF { log_[++n] = $0 }
		END { for (i = (n > 4 ? n - 3 : 1); i <= n; i++) print "  " log_[i] }
	' "$1"
}

# libbpf/bpftool lines from FILE that say what went wrong, at most 3,
# without bpftool's boilerplate.
ipxdp_error_tail()
{
	grep -v -e '^Warning: bpftool is now running' -e '^If it used to work' \
		-e '^$' -- "$1" | tail -n 3 | sed 's/^/  /'
}

# Every program of this project's objects ($IPXDP_OBJDIR/*.o) by its tag
# and name: "TAG<TAB>OBJECT<TAB>SECTION<TAB>NAME" lines (OBJECT as
# "count.o", NAME the first 15 bytes of the function, which the kernel
# keeps and ip shows).  A program attached anywhere is one of ours when its
# tag and name are in this list: the tag alone does not tell an object's
# plain section from its xdp.frags section, which may hold the same
# instructions.  xdp-status and xdp-stats name programs this way.
ipxdp_known_programs()
{
	local objs=() f tags i programs
	for f in "$IPXDP_OBJDIR"/*.o; do
		[ -f "$f" ] && [ -r "$f" ] && objs+=("$f")
	done
	[ "${#objs[@]}" -gt 0 ] || return 0
	tags=$(ipxdp_load_tags "${objs[@]}") || true
	i=0
	for f in "${objs[@]}"; do
		programs=$(ipxdp_obj_programs "$f" 2>/dev/null) || programs=
		# function -> section, joined with this object's tags
		awk -F'\t' -v OFS='\t' -v i="$i" -v obj="${f##*/}" '
			FNR == 1 { file++ }
			file == 1 { sec[$2] = $1; next }
			$1 == i && $3 != "-" && ($2 in sec) { print $3, obj, sec[$2], substr($2, 1, 15) }
		' <(printf '%s\n' "$programs") <(printf '%s\n' "$tags")
		i=$((i + 1))
	done
}

# --- counters -------------------------------------------------------------
#
# Map contents are read from the raw bytes bpftool prints ("0x2a"), never
# from its decoded numbers: jq and awk hold numbers as doubles, exact only
# below 2^53, and a byte counter gets past 2^53 in about a week at
# 100 Gbit/s.  awk adds the two 32-bit halves of each __u64 separately (a
# double holds each sum exactly, up to 2^21 CPUs) and prints the total in
# decimal with integer arithmetic on digit groups.

# 1 on a little-endian machine, 0 on a big-endian one: bpftool prints the
# bytes of keys and values in the machine's order.
ipxdp_little_endian()
{
	if [ "$(printf '\001\000' | od -An -tu2 | tr -d ' \n')" = 1 ]; then
		echo 1
	else
		echo 0
	fi
}

# awk, run with -v little=$(ipxdp_little_endian), on the output of
# `bpftool -j map dump`, `map lookup` or `batch` (of lookups): one record
# per map entry.  entry(KEYSIZE) sets KEY and VAL to the entry's key and
# value as hex strings ("2a000000"); for a per-CPU map VAL holds every
# CPU's value in turn.  u32(HEX, BYTE) reads a __u32; add64(NAME, HEX,
# BYTE) adds a __u64 to the exact sum NAME, which dec(NAME) prints.
# shellcheck disable=SC2016 # awk's variables, not the shell's
IPXDP_AWK_COUNTERS='
BEGIN {
	RS = "\"key\"[ \t\n]*:[ \t\n]*\\["
	FS = "\"0x"
	for (i = 0; i < 256; i++)
		BYTE[sprintf("%02x", i)] = i
	little += 0
}
function entry(keysize,    cut, i) {
	# Only the raw bytes count: cut off the BTF-decoded copy of the entry
	# and, in a batch, the next command.
	cut = index($0, "\"formatted\"")
	if (cut)
		$0 = substr($0, 1, cut - 1)
	cut = index($0, "\"command\"")
	if (cut)
		$0 = substr($0, 1, cut - 1)
	if (NF - 1 < keysize) {
		print "unexpected output from bpftool: " substr($0, 1, 60) > "/dev/stderr"
		exit 1
	}
	KEY = VAL = ""
	for (i = 2; i <= NF; i++)
		if (i <= keysize + 1)
			KEY = KEY substr($i, 1, 2)
		else
			VAL = VAL substr($i, 1, 2)
}
function u32(h, off,    b0, b1, b2, b3) {
	b0 = BYTE[substr(h, 2 * off + 1, 2)]
	b1 = BYTE[substr(h, 2 * off + 3, 2)]
	b2 = BYTE[substr(h, 2 * off + 5, 2)]
	b3 = BYTE[substr(h, 2 * off + 7, 2)]
	if (little)
		return ((b3 * 256 + b2) * 256 + b1) * 256 + b0
	return ((b0 * 256 + b1) * 256 + b2) * 256 + b3
}
function add64(k, h, off) {
	if (little) {
		LO[k] += u32(h, off)
		HI[k] += u32(h, off + 4)
	} else {
		HI[k] += u32(h, off)
		LO[k] += u32(h, off + 4)
	}
}
# HI[k] * 2^32 + LO[k] in decimal.  Beyond 2^53 in base-10^6 digits D[],
# least significant first; every product and carry stays below 2^53.
function dec(k,    hi, lo, n, i, d, carry, s) {
	hi = HI[k] + 0
	lo = LO[k] + 0
	carry = int(lo / 4294967296)
	lo -= carry * 4294967296
	hi += carry
	if (hi < 2097152)
		return sprintf("%.0f", hi * 4294967296 + lo)
	n = 0
	while (hi > 0) {
		D[n] = hi % 1000000
		hi = (hi - D[n]) / 1000000
		n++
	}
	carry = 0
	for (i = 0; i < n; i++) {
		d = D[i] * 4294967296 + carry
		D[i] = d % 1000000
		carry = (d - D[i]) / 1000000
	}
	while (carry > 0) {
		D[n] = carry % 1000000
		carry = (carry - D[n]) / 1000000
		n++
	}
	carry = lo
	for (i = 0; carry > 0; i++) {
		if (i == n)
			D[n++] = 0
		d = D[i] + carry
		D[i] = d % 1000000
		carry = (d - D[i]) / 1000000
	}
	s = sprintf("%d", D[n - 1])
	for (i = n - 2; i >= 0; i--)
		s = s sprintf("%06d", D[i])
	return s
}
'

# A per-CPU array of packets+bytes counters (count's proto_counters,
# blocklist's ipxdp_totals and ipxdp_counters: a __u32 key and a
# struct { __u64 packets; __u64 bytes; }), as bpftool -j prints it on
# stdin: "KEY<TAB>PACKETS<TAB>BYTES" lines, summed over all CPUs, exact
# and in decimal, for each key that counted something, in the input's order.
ipxdp_percpu_sums()
{
	awk -v little="$(ipxdp_little_endian)" "$IPXDP_AWK_COUNTERS"'
		NR > 1 {
			entry(4)
			k = u32(KEY, 0)
			HI[k "p"] = LO[k "p"] = HI[k "b"] = LO[k "b"] = 0
			for (cpu = 0; cpu < length(VAL) / 32; cpu++) {
				add64(k "p", VAL, 16 * cpu)
				add64(k "b", VAL, 16 * cpu + 8)
			}
			p = dec(k "p")
			b = dec(k "b")
			if (p != "0" || b != "0")
				print k "\t" p "\t" b
		}'
}

# --- pinned maps ----------------------------------------------------------
#
# An object whose maps are pinned by name (blocklist) shares them with
# every interface it is attached to, and with xdp-block, through the pins
# in the bpffs.  `ip netns exec` (and `ip -n`) remount /sys in a mount
# namespace of their own: ip finds no bpffs there, mounts a fresh one, and
# the program gets new, empty maps, pinned in a bpffs nobody else sees and
# that goes away with the command.  Seen from inside, its maps and the
# pins agree; only outside that mount namespace do they differ.

# The bpffs iproute2 uses, as it looks for one: $TC_BPF_MNT; else
# /sys/fs/bpf or /bpf if one is a bpffs; else the first bpffs in
# /proc/mounts, wherever it is mounted; else /sys/fs/bpf, where ip mounts
# one.  Its maps of LIBBPF_PIN_BY_NAME are pinned in tc/globals there
# (ipxdp_pin_dir).
ipxdp_bpffs()
{
	local m
	if [ -n "${TC_BPF_MNT:-}" ]; then
		printf '%s' "${TC_BPF_MNT%/}"
		return 0
	fi
	for m in /sys/fs/bpf /bpf; do
		if [ "$(stat -f -c %T -- "$m" 2>/dev/null)" = bpf_fs ]; then
			printf '%s' "$m"
			return 0
		fi
	done
	# /proc/mounts writes a blank in a path as \040.
	m=$(awk '$3 == "bpf" && $2 !~ /\\/ { print $2; exit }' /proc/mounts 2>/dev/null) || m=
	printf '%s' "${m:-/sys/fs/bpf}"
}

ipxdp_pin_dir()
{
	printf '%s/tc/globals' "$(ipxdp_bpffs)"
}

# The maps OBJ declares pinned by name (a "pinning" member of 1 in the
# BTF of its .maps), one name a line.
ipxdp_obj_pinned_maps()
{
	bpftool btf dump file "$1" 2>/dev/null | awk '
		function num(line, f) {
			return match(line, " " f "=[0-9]+") ? substr(line, RSTART + length(f) + 2, RLENGTH - length(f) - 2) : ""
		}
		/^\[[0-9]+\] / {
			cur = substr($1, 2, length($1) - 2)
			kind[cur] = $2
			name[cur] = $3
			gsub(/\047/, "", name[cur])
			tid[cur] = num($0, "type_id")
			elems[cur] = num($0, "nr_elems")
			next
		}
		# __uint(pinning, N) is "int (*pinning)[N]"
		/^\t\047pinning\047 / { pinning[cur] = num($0, "type_id") }
		END {
			for (v in kind)
				if (kind[v] == "VAR" && (tid[v] in pinning) &&
				    elems[tid[pinning[tid[v]]]] == 1)
					print name[v]
		}'
}

# The nearest ancestor of this process that is in another mount namespace,
# as far as /proc lets us see: its pid, or nothing.
ipxdp_outer_mount_ns()
{
	local mine pid=$$ ns
	mine=$(readlink /proc/self/ns/mnt) || return 0
	while pid=$(awk '$1 == "PPid:" { print $2 }' "/proc/$pid/status" 2>/dev/null) &&
		[ -n "$pid" ] && [ "$pid" -gt 0 ]; do
		ns=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null) || return 0
		if [ "$ns" != "$mine" ]; then
			printf '%s' "$pid"
			return 0
		fi
	done
}

# The id of the map pinned at PATH, or nothing.
ipxdp_pinned_id()
{
	bpftool -j map show pinned "$1" 2>/dev/null | jq -r '.id // empty' 2>/dev/null || true
}

# "map id ID", or NONE when ID is empty.
ipxdp_map_or()
{
	if [ -n "$1" ]; then
		printf 'map id %s' "$1"
	else
		printf '%s' "$2"
	fi
}

# ipxdp_check_pinned_maps OBJ PROG_ID: for each map OBJ pins by name, the
# program PROG_ID uses the map pinned under that name, as this mount
# namespace sees the pin directory and, when this process is in a mount
# namespace of its own, as the one around it sees it too.  Returns 0 when
# it does (or OBJ pins nothing), else 1 with IPXDP_MAPS_PROBLEM saying why.
IPXDP_MAPS_PROBLEM=
ipxdp_check_pinned_maps()
{
	local obj=$1 prog=$2 names dir outer name m mname want here there
	local -A used=()
	IPXDP_MAPS_PROBLEM=
	names=$(ipxdp_obj_pinned_maps "$obj")
	[ -n "$names" ] || return 0
	dir=$(ipxdp_pin_dir)
	outer=$(ipxdp_outer_mount_ns)
	for m in $(bpftool -j prog show id "$prog" 2>/dev/null | jq -r '.map_ids // [] | .[]'); do
		mname=$(bpftool -j map show id "$m" 2>/dev/null | jq -r '.name // empty') || continue
		used[$mname]=$m
	done
	while read -r name; do
		[ -n "$name" ] || continue
		want=${used[${name:0:15}]-} # the kernel keeps 15 bytes of a name
		[ -n "$want" ] || continue  # a map the program does not use
		here=$(ipxdp_pinned_id "$dir/$name")
		if [ "$here" != "$want" ]; then
			IPXDP_MAPS_PROBLEM="its map $name (map id $want) is not the one pinned in $(ipxdp_q "$dir") ($(ipxdp_map_or "$here" "none there"))"
			return 1
		fi
		[ -n "$outer" ] || continue
		there=$(ipxdp_pinned_id "/proc/$outer/root$dir/$name")
		if [ "$there" != "$want" ]; then
			IPXDP_MAPS_PROBLEM="its map $name (map id $want) is pinned in a bpffs of this mount namespace only, not the one outside it ($(ipxdp_q "$dir") there holds $(ipxdp_map_or "$there" none)): ip netns exec gives ip a bpffs of its own; use nsenter --net=/var/run/netns/NAME instead"
			return 1
		fi
	done <<<"$names"
}

# After attaching OBJ to DEV in MODE as PROG_ID (SHOWN: what to call it):
# unless it uses the pinned maps (ipxdp_check_pinned_maps), detach it
# again and exit with one line saying why.
ipxdp_require_pinned_maps()
{
	local dev=$1 mode=$2 prog=$3 obj=$4 shown=$5
	ipxdp_check_pinned_maps "$obj" "$prog" && return 0
	ip link set dev "$dev" "$(ipxdp_mode_keyword "$mode")" off >/dev/null 2>&1 ||
		die "$EX_KERNEL" "$(ipxdp_q "$dev"): $shown (prog id $prog) does not share the pinned maps: $IPXDP_MAPS_PROBLEM; and detaching it again failed"
	die "$EX_CONFLICT" "$(ipxdp_q "$dev"): $shown detached again: $IPXDP_MAPS_PROBLEM"
}

# After ip failed to attach OBJ: if libbpf refused a map pinned by name
# because the pin has another definition (the object was rebuilt with
# other capacities), sets IPXDP_PIN_CONFLICT to a message naming the map
# and the command that migrates, and returns 0.  ERR: ip's stderr.
IPXDP_PIN_CONFLICT=
ipxdp_pin_conflict()
{
	local err=$1 obj=$2 path
	path=$(sed -n "s/^libbpf: couldn't reuse pinned map at '\(.*\)': parameter mismatch\$/\1/p" "$err" | head -n 1)
	[ -n "$path" ] || return 1
	IPXDP_PIN_CONFLICT="the map pinned as $(ipxdp_q "${path//\/\//\/}") has another definition than the object's (another build made it; ip refused to reuse it, and nothing was attached): $(ipxdp_migrate_hint "$obj") moves the lists into maps like the object's"
}

# Before ip attaches OBJ: if OBJ pins several maps by name and only some of
# them are pinned in ipxdp_pin_dir, sets IPXDP_PIN_CONFLICT to a message
# naming the missing ones and returns 0.  ip would reuse the pins there and
# create the missing maps, new and empty, next to them: after an upgrade
# that added a map, the program would use an empty one without a word.
# None pinned (the first attach) and all pinned are fine.
ipxdp_partial_pins()
{
	local obj=$1 names dir name have=0 missing=()
	names=$(ipxdp_obj_pinned_maps "$obj")
	dir=$(ipxdp_pin_dir)
	while read -r name; do
		[ -n "$name" ] || continue
		if [ -e "$dir/$name" ]; then
			have=$((have + 1))
		else
			missing+=("$name")
		fi
	done < <(sort <<<"$names")
	if [ "$have" = 0 ] || [ "${#missing[@]}" = 0 ]; then
		return 1
	fi
	if [ "${#missing[@]}" = 1 ]; then
		IPXDP_PIN_CONFLICT="$(ipxdp_q "$dir") holds the object's other pinned maps but not ${missing[0]} (another build pinned them; ip would create the missing map empty next to them, so nothing was attached): $(ipxdp_migrate_hint "$obj") creates it as the object defines it"
	else
		IPXDP_PIN_CONFLICT="$(ipxdp_q "$dir") holds the object's other pinned maps but not $(printf '%s\n' "${missing[@]}" | paste -sd, - | sed 's/,/, /g') (another build pinned them; ip would create the missing maps empty next to them, so nothing was attached): $(ipxdp_migrate_hint "$obj") creates them as the object defines them"
	fi
}

# The command that makes the pinned maps fit OBJ: xdp-block migrate, with
# --object OBJ for another object than the installed blocklist.
ipxdp_migrate_hint()
{
	if [ "$1" = "$IPXDP_OBJDIR/blocklist.o" ]; then
		printf 'xdp-block migrate'
	else
		printf 'xdp-block --object %s migrate' "$(ipxdp_q "$1")"
	fi
}
