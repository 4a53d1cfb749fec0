#!/usr/bin/env bash
# A private OpenLDAP slapd for `stratus-bench ldap`, on loopback only, in a directory of its own.
#
#   slapd.sh install                                   install slapd and ldap-utils if missing (root; Debian)
#   slapd.sh start DIR SUFFIX ROOT_PASSWORD PORT [LDIF] configure DIR, load LDIF with slapadd, start slapd
#   slapd.sh stop DIR                                  stop the slapd started in DIR (by its pid file)
#
# `start` installs the packages when they are missing, then writes DIR/slapd.conf (no cn=config: a plain
# slapd.conf with back-mdb, the core, cosine, inetorgperson and nis schemas, rootdn `cn=admin,SUFFIX`), wipes and
# reloads DIR/data from LDIF when one is given (slapadd -q, before slapd runs: the fastest way in), and starts
# slapd as the current user (root) on ldap://127.0.0.1:PORT/ only, daemonised, with DIR/slapd.pid. It returns once
# slapd answers a rootDSE search, or fails after 20 s. Every command is idempotent: `start` on a DIR whose slapd
# runs restarts it, `stop` on a stopped DIR does nothing, `install` with the packages present only makes sure no
# system-wide slapd is running.
set -euo pipefail

die() {
    echo "slapd.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# The Debian package configures and starts a system slapd on install; the benchmark wants neither.
stop_system_slapd() {
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now slapd.service >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/slapd ] && command -v update-rc.d >/dev/null 2>&1; then
        update-rc.d slapd disable >/dev/null 2>&1 || true
    fi
    local pidfile pid
    for pidfile in /run/slapd/slapd.pid /var/run/slapd/slapd.pid; do
        if [ -s "$pidfile" ]; then
            pid=$(cat "$pidfile")
            if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
                echo "slapd.sh: stopping the system slapd (pid $pid)" >&2
                kill "$pid" 2>/dev/null || true
            fi
        fi
    done
}

do_install() {
    local missing=() p
    for p in slapd ldap-utils; do
        installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        [ "$(id -u)" = 0 ] || die "installing ${missing[*]} needs root"
        export DEBIAN_FRONTEND=noninteractive
        # No system database or configuration: the benchmark brings its own.
        echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections
        # Keep the maintainer scripts from starting the service, unless the machine already has a policy.
        local policy=/usr/sbin/policy-rc.d ours=0
        if [ ! -e "$policy" ]; then
            printf '#!/bin/sh\nexit 101\n' >"$policy"
            chmod 755 "$policy"
            ours=1
        fi
        local rc=0
        {
            apt-get update -q &&
                apt-get install -y -q --no-install-recommends "${missing[@]}"
        } || rc=$?
        if [ "$ours" = 1 ]; then
            rm -f "$policy"
        fi
        [ "$rc" = 0 ] || die "apt-get install ${missing[*]} failed ($rc)"
    fi
    stop_system_slapd
    for p in slapd slapadd slappasswd; do
        [ -x "/usr/sbin/$p" ] || command -v "$p" >/dev/null 2>&1 || die "$p not found after install"
    done
    command -v ldapsearch >/dev/null 2>&1 || die "ldapsearch not found after install"
}

running_pid() {
    local pidfile="$1/slapd.pid" pid
    [ -s "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # Only ever signal a slapd: a stale pid file may name a recycled pid.
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = slapd ] || return 1
    echo "$pid"
}

do_stop() {
    local dir="$1" pid i
    pid=$(running_pid "$dir") || {
        rm -f "$dir/slapd.pid"
        return 0
    }
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "slapd.sh: slapd $pid ignored SIGTERM for 10 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/slapd.pid"
}

do_start() {
    local dir="$1" suffix="$2" password="$3" port="$4" ldif="${5:-}"
    case "$port" in
    '' | *[!0-9]*) die "port must be a number: $port" ;;
    esac
    [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "port out of range: $port"
    [ -n "$suffix" ] || die "empty suffix"
    [ -n "$password" ] || die "empty root password"
    if [ -n "$ldif" ]; then
        [ -r "$ldif" ] || die "cannot read $ldif"
        ldif=$(realpath "$ldif")
    fi
    do_install
    mkdir -p "$dir"
    dir=$(realpath "$dir")
    do_stop "$dir"
    mkdir -p "$dir/data"

    local schema=/etc/ldap/schema rootpw
    for s in core cosine inetorgperson nis; do
        [ -r "$schema/$s.schema" ] || die "missing $schema/$s.schema"
    done
    rootpw=$(slappasswd -h '{SSHA}' -s "$password")
    # slapd.conf is read by the slap tools too; keep it private, it holds the root password hash.
    (
        umask 077
        cat >"$dir/slapd.conf" <<CONF
# Written by benches/ldap/slapd.sh for stratus-bench; private to $dir.
include         $schema/core.schema
include         $schema/cosine.schema
include         $schema/inetorgperson.schema
include         $schema/nis.schema

pidfile         $dir/slapd.pid
argsfile        $dir/slapd.args
modulepath      /usr/lib/ldap
moduleload      back_mdb
loglevel        none

database        mdb
maxsize         4294967296
suffix          "$suffix"
rootdn          "cn=admin,$suffix"
rootpw          $rootpw
directory       $dir/data
index           objectClass eq
index           uid,cn,mail eq
index           uidNumber,gidNumber eq
index           member,memberUid eq

access to attrs=userPassword
        by self write
        by anonymous auth
        by * none
access to *
        by users read
        by * none
CONF
    )
    if [ -n "$ldif" ]; then
        rm -rf "${dir:?}/data"
        mkdir -p "$dir/data"
        slapadd -q -f "$dir/slapd.conf" -l "$ldif" >"$dir/slapadd.log" 2>&1 ||
            die "slapadd failed: $(tail -n 5 "$dir/slapadd.log")"
    fi
    slaptest -u -f "$dir/slapd.conf" >"$dir/slaptest.log" 2>&1 ||
        die "slaptest failed: $(tail -n 5 "$dir/slaptest.log")"

    local url="ldap://127.0.0.1:$port/" i
    slapd -h "$url" -f "$dir/slapd.conf" -n slapd-bench ||
        die "slapd did not start"
    for i in $(seq 1 200); do
        if ldapsearch -x -H "$url" -b '' -s base -LLL namingContexts >/dev/null 2>&1; then
            echo "slapd.sh: slapd $(cat "$dir/slapd.pid") serves $suffix on $url"
            return 0
        fi
        sleep 0.1
    done
    do_stop "$dir"
    die "slapd did not answer on $url within 20 s"
}

[ $# -ge 1 ] || usage
cmd="$1"
shift
case "$cmd" in
install)
    [ $# -eq 0 ] || usage
    do_install
    ;;
start)
    [ $# -eq 4 ] || [ $# -eq 5 ] || usage
    do_start "$@"
    ;;
stop)
    [ $# -eq 1 ] || usage
    [ -d "$1" ] || exit 0
    do_stop "$(realpath "$1")"
    ;;
*) usage ;;
esac
