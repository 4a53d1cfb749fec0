#!/usr/bin/env bash
# A private FreeRADIUS for `stratus-bench radius`, on loopback only, in a directory of its own.
#
#   freeradius.sh install                         install freeradius if missing (root; Debian); print its version
#   freeradius.sh start DIR SECRET PORT USERS     write a minimal config in DIR and run freeradius in the foreground
#
# `start` installs the package when it is missing, then writes DIR/radiusd.conf (everything the server reads is
# in DIR: no file of /etc/freeradius is used), DIR/clients.conf (127.0.0.1 only, with SECRET and
# `require_message_authenticator = yes`) and copies USERS, a `files`-module users file, to DIR/users. The server
# has one virtual server, authentication only, on 127.0.0.1:PORT: `authorize { files; pap }`,
# `authenticate { Auth-Type PAP { pap } }`, and a `post-auth` that puts a Message-Authenticator in every reply.
# It checks the configuration with `freeradius -C`, then replaces itself (exec) with `freeradius -f -d DIR` as
# the current user: the caller owns the process, and stops it by signalling the pid it spawned. There is no
# `stop`. Logging goes to DIR/radius.log (errors and start-up only: debug output would cost throughput).
#
# FreeRADIUS 3.2.1 (Debian 12) predates the Blast-RADIUS mitigations of 3.2.5 (the `security` options
# `require_message_authenticator` and `limit_proxy_state`); it does not add a Message-Authenticator to a PAP reply
# by itself. It has the per-client `require_message_authenticator`, used here, and it computes the
# Message-Authenticator of any reply that holds one, so `post-auth` adds `Message-Authenticator := 0x00` to the
# reply list (with no other reply attribute, it is the first). An Access-Reject skips post-auth's main section and
# runs `Post-Auth-Type REJECT`, so it is added there too.
set -euo pipefail

# shellcheck source=freeradius-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/freeradius-common.sh"


usage() {
    sed -n '4,5p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}



# The Debian package starts a system FreeRADIUS on 1812/1813 on install; the benchmark wants none running.
stop_system_freeradius() {
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now freeradius.service >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/freeradius ] && command -v update-rc.d >/dev/null 2>&1; then
        update-rc.d freeradius disable >/dev/null 2>&1 || true
    fi
    local pidfile pid
    for pidfile in /run/freeradius/freeradius.pid /var/run/freeradius/freeradius.pid; do
        if [ -s "$pidfile" ]; then
            pid=$(cat "$pidfile")
            if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
                [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = freeradius ]; then
                echo "freeradius.sh: stopping the system freeradius (pid $pid)" >&2
                kill "$pid" 2>/dev/null || true
            fi
        fi
    done
}

do_install() {
    if ! installed freeradius; then
        [ "$(id -u)" = 0 ] || die "installing freeradius needs root"
        export DEBIAN_FRONTEND=noninteractive
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
                apt-get install -y -q --no-install-recommends freeradius
        } || rc=$?
        if [ "$ours" = 1 ]; then
            rm -f "$policy"
        fi
        [ "$rc" = 0 ] || die "apt-get install freeradius failed ($rc)"
    fi
    stop_system_freeradius
    server_bin >/dev/null || die "freeradius not found after install"
    [ -r /usr/share/freeradius/dictionary ] || die "missing /usr/share/freeradius/dictionary"
    local lib
    for lib in rlm_pap rlm_files; do
        [ -e "/usr/lib/freeradius/$lib.so" ] || die "missing /usr/lib/freeradius/$lib.so"
    done
}

do_start() {
    local dir="$1" secret="$2" port="$3" users="$4"
    case "$port" in
    '' | *[!0-9]*) die "port must be a number: $port" ;;
    esac
    [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "port out of range: $port"
    check_secret "$secret"
    [ -r "$users" ] || die "cannot read $users"
    do_install
    mkdir -p "$dir"
    dir=$(realpath "$dir")
    mkdir -p "$dir/run" "$dir/log"
    local bin
    bin=$(server_bin)

    (
        umask 077
        cp "$users" "$dir/users"
        write_base_config "$dir" "$secret"
        cat >>"$dir/radiusd.conf" <<CONF
modules {
	pap {
		normalise = yes
	}
	files {
		filename = $dir/users
	}
}

instantiate {
}

server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = $port
	}
	authorize {
		files
		pap
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
	}
	post-auth {
		update reply {
			&Message-Authenticator := 0x00
		}
		Post-Auth-Type REJECT {
			update reply {
				&Message-Authenticator := 0x00
			}
		}
	}
}
CONF
    )
    "$bin" -C -d "$dir" -n radiusd -l stdout >"$dir/check.log" 2>&1 ||
        die "freeradius -C rejects the configuration: $(tail -n 5 "$dir/check.log")"
    echo "freeradius.sh: starting $bin -f -d $dir on 127.0.0.1:$port (auth)" >&2
    exec "$bin" -f -d "$dir" -n radiusd
}

[ $# -ge 1 ] || usage
cmd="$1"
shift
case "$cmd" in
install)
    [ $# -eq 0 ] || usage
    do_install
    "$(server_bin)" -v 2>&1 | sed -n 1p
    ;;
start)
    [ $# -eq 4 ] || usage
    do_start "$@"
    ;;
*) usage ;;
esac
