#!/usr/bin/env bash
# start-ad.sh - throwaway Samba Active Directory DC on a loopback address, for tests.
#
# Verified on Debian 12 (bookworm), Samba 4.17.12, as root.
#   apt-get install --no-install-recommends samba samba-dsdb-modules samba-vfs-modules \
#       samba-ad-provision ldap-utils openssl python3-ldap
#
# Usage:
#   start-ad.sh start          provision + start samba in background, wait for LDAPS,
#                              print KEY=VALUE settings (also written to $AD_DIR/ad.env)
#   start-ad.sh stop           kill samba, delete $AD_DIR
#   start-ad.sh status         exit 0 if running and answering LDAPS
#   start-ad.sh run CMD [ARG]  start, export the settings into CMD's environment,
#                              run CMD, always stop afterwards; exits with CMD's status
#
# Tunables (environment):
#   AD_IP             loopback address to bind (default 127.0.0.77). Samba's AD LDAP
#                     ports are hard-coded (389, 636, 3268, 3269): there is no smb.conf
#                     "ldap port" option, so we isolate by address instead.
#   AD_DIR            working dir (default /tmp/samba-ad-$AD_IP); wiped on start/stop.
#                     Keep it short: unix socket paths under it must stay < 108 chars.
#   AD_REALM          default STRATUS.TEST         AD_DOMAIN  default STRATUS
#   AD_HOST           default dc1 (DC's DNS name is $AD_HOST.<realm lowercased>)
#   AD_ADMIN_PASS     default Adm1n-Pass-Stratus!  (must satisfy default complexity)
#   AD_RELAX_PW_POLICY 1 = complexity off, min length 0, history 0, min/max age 0
#                     (default 0 = Samba defaults: complexity on, len 7, history 24,
#                     min age 1 day, max age 42 days)
#   AD_MAX_RUNTIME    samba exits by itself after this many seconds (default 7200),
#                     a safety net if the test harness dies without calling stop
#   AD_START_TIMEOUT  seconds to wait for LDAPS (default 60)
#   AD_PROCESS_MODEL  samba -M model (default single: one process, easy teardown)
#   AD_SERVICES       smb.conf "server services" (default "ldap"; e.g. "ldap kdc")
#   AD_OLD_PW_PERIOD  smb.conf "old password allowed period" in minutes (default 0 here;
#                     Samba's default 60 keeps the *previous* password valid for simple
#                     binds for an hour after a reset/change, breaking "old pw fails" tests)
#   AD_EXTRA_CONF     extra smb.conf [global] line(s), e.g. "ldap server require strong auth = no"
#   AD_KEEP=1         do not delete $AD_DIR on stop (for debugging)
set -euo pipefail

AD_IP=${AD_IP:-127.0.0.77}
AD_DIR=${AD_DIR:-/tmp/samba-ad-$AD_IP}
AD_REALM=${AD_REALM:-STRATUS.TEST}
AD_DOMAIN=${AD_DOMAIN:-STRATUS}
AD_HOST=${AD_HOST:-dc1}
AD_ADMIN_PASS=${AD_ADMIN_PASS:-Adm1n-Pass-Stratus!}
AD_RELAX_PW_POLICY=${AD_RELAX_PW_POLICY:-0}
AD_MAX_RUNTIME=${AD_MAX_RUNTIME:-7200}
AD_START_TIMEOUT=${AD_START_TIMEOUT:-60}
AD_PROCESS_MODEL=${AD_PROCESS_MODEL:-single}
AD_SERVICES=${AD_SERVICES:-ldap}
AD_KEEP=${AD_KEEP:-0}
AD_OLD_PW_PERIOD=${AD_OLD_PW_PERIOD:-0}

[[ "$AD_DIR" == /*/* && "$AD_DIR" != *..* ]] || { echo "start-ad: refusing AD_DIR='$AD_DIR'" >&2; exit 1; }

REALM_LC=$(tr '[:upper:]' '[:lower:]' <<<"$AD_REALM")
BASE_DN=$(sed 's/^/DC=/; s/\./,DC=/g' <<<"$REALM_LC")
FQDN="$AD_HOST.$REALM_LC"
NETBIOS=$(tr '[:lower:]' '[:upper:]' <<<"$AD_HOST")
PIDFILE="$AD_DIR/samba.child.pid"
CONF="$AD_DIR/etc/smb.conf"

log() { echo "start-ad: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Is $1 a live samba process started by us for this $AD_DIR?
is_our_samba() {
    local pid=$1
    [[ -n "$pid" && -d /proc/$pid ]] || return 1
    # samba rewrites its argv ("samba: root process"), so /proc/PID/cmdline is useless;
    # check the executable and that it holds files open under AD_DIR instead.
    [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == */samba ]] || return 1
    ls -l "/proc/$pid/fd" 2>/dev/null | grep -qF -- "$AD_DIR/"
}

# Process exists and is not a zombie (PID 1 in containers may not reap orphans).
alive() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n "$st" && "$st" != Z* ]]
}

do_stop() {
    local pid=""
    [[ -f "$PIDFILE" ]] && pid=$(cat "$PIDFILE" 2>/dev/null || true)
    if is_our_samba "$pid"; then
        log "stopping samba pid $pid (process group $pid)"
        # samba was started via setsid => it leads its own process group; signal the
        # group so prefork children (if AD_PROCESS_MODEL=prefork) die as well.
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            log "samba did not exit on SIGTERM, sending SIGKILL"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
        wait "$pid" 2>/dev/null || true   # reap it if it is our child ("run" mode)
    fi
    # Wait (briefly) until the ports on AD_IP are free again.
    for _ in $(seq 1 30); do
        [[ -z "$(listeners_on_ip)" ]] && break
        sleep 0.1
    done
    if [[ "$AD_KEEP" != 1 && -d "$AD_DIR" ]]; then
        rm -rf -- "$AD_DIR"
    fi
}

# TCP listeners on 389/636/3268/3269 that would clash with AD_IP (same address or wildcard).
listeners_on_ip() {
    ss -Hltn 2>/dev/null | awk -v ip="$AD_IP" '
        { n = split($4, a, ":"); port = a[n]; addr = substr($4, 1, length($4) - length(port) - 1)
          if ((port == 389 || port == 636 || port == 3268 || port == 3269) &&
              (addr == ip || addr == "0.0.0.0" || addr == "*" || addr == "[::]"))
              print $4 }'
}

ldaps_ready() {
    LDAPTLS_CACERT="$AD_DIR/tls/ca.pem" LDAPTLS_REQCERT=demand \
        ldapsearch -x -o nettimeout=2 -H "ldaps://$AD_IP" \
        -D "Administrator@$AD_REALM" -w "$AD_ADMIN_PASS" \
        -b "$BASE_DN" -s base dn >/dev/null 2>&1
    # (not ldapwhoami: Samba does not implement the WhoAmI extended operation)
}

gen_tls() {
    # Samba's auto-generated cert has CN=<DC FQDN> and *no* subjectAltName, which
    # rustls/webpki and other strict clients reject. Make our own CA + server cert
    # with SANs for the DC FQDN, localhost and the loopback IP.
    local t="$AD_DIR/tls"
    mkdir -p "$t"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
        -subj "/O=Samba test/CN=Throwaway Samba AD test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$t/ca.key" -out "$t/ca.pem" >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -sha256 -subj "/O=Samba test/CN=$FQDN" \
        -keyout "$t/key.pem" -out "$t/cert.csr" >/dev/null 2>&1
    printf '%s\n' \
        "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" \
        "subjectAltName=DNS:$FQDN,DNS:$REALM_LC,DNS:localhost,IP:$AD_IP" >"$t/ext.cnf"
    openssl x509 -req -in "$t/cert.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" \
        -CAcreateserial -days 3650 -sha256 -extfile "$t/ext.cnf" \
        -out "$t/cert.pem" >/dev/null 2>&1
    chmod 600 "$t/key.pem" "$t/ca.key"   # samba refuses keys readable by others
}

do_start() {
    local t0 t1 t2
    t0=$(date +%s.%N)
    for c in samba samba-tool openssl ldapsearch ss setsid; do
        command -v "$c" >/dev/null || die "missing command: $c (see header for packages)"
    done
    [[ $EUID -eq 0 ]] || log "WARNING: not root; provisioning needs root (chown/xattrs) and ports <1024 need CAP_NET_BIND_SERVICE"
    [[ "$AD_IP" == 127.* ]] || die "AD_IP must be a 127.x.y.z loopback address"

    do_stop   # stale instance from a previous run in the same AD_DIR

    local clash
    clash=$(listeners_on_ip)
    [[ -z "$clash" ]] || die "something already listens on: $(echo $clash) (e.g. slapd on ldap:/// binds 0.0.0.0:389). Stop it or choose another setup."

    mkdir -p "$AD_DIR"/{run,log}
    chmod 755 "$AD_DIR"
    gen_tls
    # Provision from an empty base config so nothing from /etc/samba/smb.conf
    # (log file=/var/log/samba/..., [homes], [printers]) leaks into ours, and point
    # every runtime path (pid, sockets, logs) into AD_DIR.
    printf '[global]\n' >"$AD_DIR/base.conf"
    # "interfaces = IP/8": samba only binds addresses that exist on an interface;
    # 127.0.0.77 alone gives "no network interfaces found", but IP/8 is accepted as a
    # host address inside lo's 127.0.0.0/8 and samba binds exactly that IP.
    if ! samba-tool domain provision -s "$AD_DIR/base.conf" --targetdir="$AD_DIR" \
        --realm="$AD_REALM" --domain="$AD_DOMAIN" --server-role=dc \
        --dns-backend=NONE --host-name="$AD_HOST" \
        --adminpass="$AD_ADMIN_PASS" \
        --option="netbios name=$NETBIOS" \
        --option="interfaces=$AD_IP/8" \
        --option="bind interfaces only=yes" \
        --option="server services=$AD_SERVICES" \
        --option="pid directory=$AD_DIR/run" \
        --option="ncalrpc dir=$AD_DIR/run/ncalrpc" \
        --option="winbindd socket directory=$AD_DIR/run/winbindd" \
        --option="ntp signd socket directory=$AD_DIR/run/ntp_signd" \
        --option="log file=$AD_DIR/log/log.%m" \
        --option="usershare path=$AD_DIR/usershares" \
        --option="tls enabled=yes" \
        --option="tls keyfile=$AD_DIR/tls/key.pem" \
        --option="tls certfile=$AD_DIR/tls/cert.pem" \
        --option="tls cafile=$AD_DIR/tls/ca.pem" \
        >"$AD_DIR/provision.log" 2>&1; then
        tail -n 25 "$AD_DIR/provision.log" >&2
        die "provisioning failed (full log: $AD_DIR/provision.log)"
    fi
    # Runtime-only settings are appended to [global] by hand: provision writes smb.conf
    # with lp.dump(), which silently drops some --option values (e.g.
    # "old password allowed period = 0" vanished), so don't rely on it for those.
    {
        printf '\told password allowed period = %s\n' "$AD_OLD_PW_PERIOD"
        [[ -z "${AD_EXTRA_CONF:-}" ]] || printf '\t%s\n' "$AD_EXTRA_CONF"
    } >"$AD_DIR/extra.conf"
    sed -i "/^\[global\]/r $AD_DIR/extra.conf" "$CONF"
    [[ "$(testparm -s "$CONF" --parameter-name='old password allowed period' 2>/dev/null)" == "$AD_OLD_PW_PERIOD" ]] \
        || die "could not apply 'old password allowed period' to $CONF"
    if [[ "$AD_RELAX_PW_POLICY" == 1 ]]; then
        samba-tool domain passwordsettings set -s "$CONF" -H "$AD_DIR/private/sam.ldb" \
            --complexity=off --min-pwd-length=0 --history-length=0 \
            --min-pwd-age=0 --max-pwd-age=0 >>"$AD_DIR/provision.log" 2>&1 \
            || die "passwordsettings failed (see $AD_DIR/provision.log)"
    fi
    t1=$(date +%s.%N)

    # setsid: own session + process group (no terminal signals; whole group killable).
    # -i: no daemonizing, log to stdout. --maximum-runtime: self-destruct safety net.
    setsid samba -i -M "$AD_PROCESS_MODEL" -s "$CONF" \
        --maximum-runtime="$AD_MAX_RUNTIME" </dev/null >"$AD_DIR/samba.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$PIDFILE"

    local deadline=$((SECONDS + AD_START_TIMEOUT))
    until ldaps_ready; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$AD_DIR/samba.log" >&2
            die "samba exited during startup (log: $AD_DIR/samba.log)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 20 "$AD_DIR/samba.log" >&2
            do_stop
            die "LDAPS did not answer within ${AD_START_TIMEOUT}s"
        fi
        sleep 0.2
    done
    t2=$(date +%s.%N)

    cat >"$AD_DIR/ad.env" <<EOF
AD_DIR=$AD_DIR
AD_SAMBA_PID=$pid
AD_SMB_CONF=$CONF
AD_IP=$AD_IP
AD_HOSTNAME=$FQDN
AD_REALM=$AD_REALM
AD_DOMAIN=$AD_DOMAIN
AD_LDAPS_URL=ldaps://$AD_IP:636
AD_LDAP_URL=ldap://$AD_IP:389
AD_CA_CERT=$AD_DIR/tls/ca.pem
AD_BASE_DN=$BASE_DN
AD_USERS_DN=CN=Users,$BASE_DN
AD_ADMIN_DN=CN=Administrator,CN=Users,$BASE_DN
AD_ADMIN_UPN=Administrator@$AD_REALM
AD_ADMIN_PASS=$AD_ADMIN_PASS
EOF
    log "$(awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "ready: provision %.1fs, samba start -> LDAPS bind %.1fs, total %.1fs", b-a, c-b, c-a }')"
    cat "$AD_DIR/ad.env"
}

cmd=${1:-}
case "$cmd" in
    start) do_start ;;
    stop) do_stop ;;
    status)
        pid=$(cat "$PIDFILE" 2>/dev/null || true)
        if is_our_samba "$pid" && ldaps_ready; then echo "running pid $pid"; else echo "not running"; exit 1; fi ;;
    run)
        shift
        [[ $# -gt 0 ]] || die "usage: $0 run CMD [ARGS...]"
        trap 'do_stop' EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        do_start >/dev/null
        set -a; . "$AD_DIR/ad.env"; set +a
        # Run CMD in the background and wait, so a TERM/INT sent to this script is
        # handled at once (bash defers traps while a foreground child runs) and is
        # forwarded to CMD. (Async children ignore SIGINT, hence TERM for both.)
        "$@" <&0 &
        child=$!
        trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 130' INT
        trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 143' TERM
        set +e
        wait "$child"
        rc=$?
        set -e
        exit "$rc" ;;
    *) echo "usage: $0 {start|stop|status|run CMD...}" >&2; exit 2 ;;
esac
