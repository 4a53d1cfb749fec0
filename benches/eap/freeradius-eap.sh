#!/usr/bin/env bash
# A private FreeRADIUS doing PEAP-MSCHAPv2 for `stratus-bench eap`, on loopback only, in a directory of its own.
#
#   freeradius-eap.sh install [--eapol-test]    install freeradius (and eapoltest) if missing; print versions
#   freeradius-eap.sh start DIR SECRET PORT USERS CERT KEY CA FRAGMENT    configure DIR, run freeradius in it
#
# `install` runs `benches/radius/freeradius.sh install` (the Debian package `freeradius`, with a policy-rc.d that
# keeps its maintainer scripts from starting it, and no system FreeRADIUS left running), checks the EAP modules
# are there and, with `--eapol-test`, installs the Debian package `eapoltest` when `eapol_test` is missing.
#
# `start` copies USERS (a `files`-module users file with Cleartext-Password), CERT (server certificate and its CA,
# PEM), KEY and CA into DIR and writes DIR/radiusd.conf: nothing of /etc/freeradius is read. The configuration
# is Debian's mods-available/eap and sites-available/inner-tunnel cut down to PEAP-MSCHAPv2:
#   - clients.conf: 127.0.0.1 only, with SECRET and `require_message_authenticator = yes`;
#   - the `eap` module with `default_eap_type = peap`, one `tls-config` (Debian's TLS settings: TLS 1.2 only,
#     `cipher_list = "DEFAULT"`, client cipher order, no session cache, so every login is a full handshake;
#     `fragment_size = FRAGMENT`), `peap` with `default_eap_type = mschapv2` and virtual server `inner-tunnel`,
#     and `mschapv2`;
#   - the modules `mschap`, `files` (the users file) and `pap`;
#   - server `default`, authentication on 127.0.0.1:PORT: `authorize { eap }`, `authenticate { eap }`, and `eap`
#     in `Post-Auth-Type REJECT` (the EAP-Failure of a reject);
#   - server `inner-tunnel`, no listener: `authorize { mschap; eap; files; pap }`,
#     `authenticate { Auth-Type MS-CHAP { mschap }; eap }`.
# Every reply that carries EAP-Message gets a Message-Authenticator from the eap module (RFC 3579), so unlike the
# PAP set-up of benches/radius/freeradius.sh nothing is added in post-auth. It checks the configuration with
# `freeradius -C`, then replaces itself (exec) with `freeradius -f -d DIR` as the current user: the caller owns
# the process and stops it by signalling the pid it spawned. Logging goes to DIR/radius.log (errors and start-up
# only: debug output would cost throughput).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../radius/freeradius-common.sh
. "$here/../radius/freeradius-common.sh"


usage() {
    sed -n '4,5p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}



install_eapol_test() {
    if command -v eapol_test >/dev/null 2>&1; then
        return 0
    fi
    if ! installed eapoltest; then
        [ "$(id -u)" = 0 ] || die "installing eapoltest needs root"
        export DEBIAN_FRONTEND=noninteractive
        {
            apt-get update -q &&
                apt-get install -y -q --no-install-recommends eapoltest
        } >&2 || die "apt-get install eapoltest failed"
    fi
    command -v eapol_test >/dev/null 2>&1 || die "eapol_test not found after installing eapoltest"
}

do_install() {
    # The PAP benchmark's script installs the package and stops any system FreeRADIUS; its version line goes to
    # our stdout below.
    bash "$here/../radius/freeradius.sh" install >/dev/null
    local lib
    for lib in rlm_eap rlm_eap_peap rlm_eap_mschapv2 rlm_mschap rlm_files rlm_pap; do
        [ -e "/usr/lib/freeradius/$lib.so" ] || die "missing /usr/lib/freeradius/$lib.so"
    done
}

do_start() {
    local dir="$1" secret="$2" port="$3" users="$4" cert="$5" key="$6" ca="$7" fragment="$8"
    case "$port" in
    '' | *[!0-9]*) die "port must be a number: $port" ;;
    esac
    [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "port out of range: $port"
    case "$fragment" in
    '' | *[!0-9]*) die "fragment size must be a number: $fragment" ;;
    esac
    [ "$fragment" -ge 100 ] && [ "$fragment" -le 4000 ] || die "fragment size out of range: $fragment"
    check_secret "$secret"
    local f
    for f in "$users" "$cert" "$key" "$ca"; do
        [ -r "$f" ] || die "cannot read $f"
    done
    do_install
    mkdir -p "$dir"
    dir=$(realpath "$dir")
    mkdir -p "$dir/run" "$dir/log"
    local bin
    bin=$(server_bin)

    (
        umask 077
        cp "$users" "$dir/users"
        cp "$cert" "$dir/server.pem"
        cp "$key" "$dir/server-key.pem"
        cp "$ca" "$dir/ca.pem"
        write_base_config "$dir" "$secret"
        cat >>"$dir/radiusd.conf" <<CONF
modules {
	# Debian's mods-available/eap, PEAP-MSCHAPv2 only.
	eap {
		default_eap_type = peap
		timer_expire = 60
		ignore_unknown_eap_types = no
		cisco_accounting_username_bug = no
		max_sessions = \${max_requests}
		tls-config tls-common {
			private_key_file = $dir/server-key.pem
			certificate_file = $dir/server.pem
			ca_file = $dir/ca.pem
			cipher_list = "DEFAULT"
			cipher_server_preference = no
			tls_min_version = "1.2"
			tls_max_version = "1.2"
			ecdh_curve = ""
			fragment_size = $fragment
			cache {
				enable = no
			}
			verify {
			}
			ocsp {
				enable = no
			}
		}
		peap {
			tls = tls-common
			default_eap_type = mschapv2
			copy_request_to_tunnel = no
			use_tunneled_reply = no
			virtual_server = "inner-tunnel"
		}
		mschapv2 {
		}
	}
	mschap {
	}
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
		eap {
			ok = return
		}
	}
	authenticate {
		eap
	}
	post-auth {
		Post-Auth-Type REJECT {
			eap
		}
	}
}

# Debian's sites-available/inner-tunnel, cut down to what EAP-MSCHAPv2 with a users file needs.
server inner-tunnel {
	authorize {
		mschap
		eap {
			ok = return
		}
		files
		pap
	}
	authenticate {
		Auth-Type MS-CHAP {
			mschap
		}
		eap
	}
}
CONF
    )
    "$bin" -C -d "$dir" -n radiusd -l stdout >"$dir/check.log" 2>&1 ||
        die "freeradius -C rejects the configuration: $(tail -n 5 "$dir/check.log")"
    echo "freeradius-eap.sh: starting $bin -f -d $dir on 127.0.0.1:$port (auth, PEAP-MSCHAPv2)" >&2
    exec "$bin" -f -d "$dir" -n radiusd
}

[ $# -ge 1 ] || usage
cmd="$1"
shift
case "$cmd" in
install)
    case "$#:${1:-}" in
    0:) ;;
    1:--eapol-test) install_eapol_test ;;
    *) usage ;;
    esac
    do_install
    "$(server_bin)" -v 2>&1 | sed -n 1p
    if command -v eapol_test >/dev/null 2>&1; then
        echo "eapol_test: $(eapol_test -v 2>&1 | sed -n 1p)"
    fi
    ;;
start)
    [ $# -eq 8 ] || usage
    do_start "$@"
    ;;
*) usage ;;
esac
