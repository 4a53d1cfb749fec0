# Shared by benches/radius/freeradius.sh and benches/eap/freeradius-eap.sh (sourced, not run): the checks and the
# part of a private FreeRADIUS configuration that both benchmarks use — clients.conf for 127.0.0.1 with
# `require_message_authenticator = yes`, and the head of radiusd.conf (paths inside DIR, limits, logging,
# security, thread pool). Each script appends its own `modules` and `server` sections.

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

server_bin() {
    if [ -x /usr/sbin/freeradius ]; then
        echo /usr/sbin/freeradius
    elif command -v freeradius >/dev/null 2>&1; then
        command -v freeradius
    else
        return 1
    fi
}

check_secret() {
    [ "${#1}" -ge 16 ] || die "the shared secret must have at least 16 characters"
    case "$1" in
    *[!A-Za-z0-9_.-]*) die "the shared secret may hold letters, digits, '_', '.' and '-' only" ;;
    esac
}

# write_base_config DIR SECRET: DIR/clients.conf and the head of DIR/radiusd.conf (run with umask 077).
write_base_config() {
    local dir="$1" secret="$2" by
    by=$(basename "$0")
    cat >"$dir/clients.conf" <<CONF
# Written by $by for stratus-bench; private to $dir.
client bench {
	ipaddr = 127.0.0.1
	proto = udp
	secret = $secret
	require_message_authenticator = yes
	nas_type = other
}
CONF
    cat >"$dir/radiusd.conf" <<CONF
# Written by $by for stratus-bench; private to $dir.
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = $dir
sbindir = /usr/sbin
logdir = $dir/log
raddbdir = $dir
name = freeradius
confdir = $dir
modconfdir = $dir
certdir = $dir
cadir = $dir
run_dir = $dir/run
db_dir = $dir
libdir = /usr/lib/freeradius
pidfile = $dir/run/freeradius.pid

# Debian's defaults, except max_requests: the server keeps every request (every round trip of an EAP
# conversation) for cleanup_delay seconds after its reply, to answer retransmissions, and drops new ones beyond
# max_requests, which at 16,384 would cap it near 3,300 requests/s. Stratus remembers up to 200,000 for 30 s.
max_request_time = 30
cleanup_delay = 5
max_requests = 1048576
hostname_lookups = no

log {
	destination = files
	colourise = no
	file = $dir/radius.log
	stripped_names = no
	auth = no
	auth_badpass = no
	auth_goodpass = no
}

security {
	allow_core_dumps = no
	max_attributes = 200
	# No delay on Access-Reject: a reject would otherwise look like a slow answer in the latency figures.
	reject_delay = 0
	status_server = yes
}

proxy_requests = no
\$INCLUDE $dir/clients.conf

# Debian's defaults.
thread pool {
	start_servers = 5
	max_servers = 32
	min_spare_servers = 3
	max_spare_servers = 10
	max_requests_per_server = 0
	auto_limit_acct = no
}

CONF
}
