# tests/servers/swift.sh -- OpenStack Swift with its s3api middleware on
# loopback, for the e2e tests and bench/compare (sourced; defines functions
# only).  The recipe is /work/shared/spec/test-servers.md's.  Needs Swift's
# servers (swift-*-server) and python modules (python3-swift), openssl, curl.
#
#   swift_start DIR [TLS_PORT [HTTP_PORT]]
#       configuration, rings and storage under DIR (the storage is kept
#       between starts); launches the account, container and object servers
#       and two proxies, without waiting for them: https on $SWIFT_TLS_PORT
#       (certificate DIR/tls/cert.pem, region us-east-1) and plain http on
#       $SWIFT_HTTP_PORT (region eu-central-1, which clients must discover or
#       be told).  Ports default to free ones.  Their process ids go to
#       the array SWIFT_PIDS.  Access keys (tempauth): test:tester / testing,
#       test2:tester2 / testing2.
#   swift_ready DIR [TLS_PORT]  one probe: are all five servers up (the https
#                            proxy on TLS_PORT, when given: not a stale start)?
#   swift_wait DIR [SECONDS] until swift_ready (default 90 s: Swift needs ~7 s
#                            of CPU to start, which takes long on a busy machine)
#   swift_stop               TERM the processes in SWIFT_PIDS and reap them
#
# Over plain http restic 0.14 sends aws-chunked bodies, which Swift refuses
# (501): restic must use the https proxy.

# Swift's modules are Debian's: the system python, not one found first on PATH
_swift_py() {
    if [ -n "${PY:-}" ]; then "$PY" "$@"
    elif [ -x /usr/bin/python3 ]; then /usr/bin/python3 "$@"
    else python3 "$@"; fi
}

_swift_free_port() {
    _swift_py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

_swift_rings() { # ETC ACCOUNT_PORT CONTAINER_PORT OBJECT_PORT
    _swift_py - "$@" <<'PYEOF'
import sys
from swift.common.ring import RingBuilder
etc = sys.argv[1]
for name, port in (("account", sys.argv[2]), ("container", sys.argv[3]), ("object", sys.argv[4])):
    b = RingBuilder(6, 1, 1)
    b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port), "device": "d1", "weight": 100})
    b.rebalance()
    b.get_ring().save("%s/%s.ring.gz" % (etc, name))
PYEOF
}

_swift_proxy_filters() { # MEMCACHE_PORT REGION
    cat <<CONF
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
user_test2_tester2 = testing2 .admin
[filter:s3api]
use = egg:swift#s3api
location = $2
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$1
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
CONF
}

swift_start() { # DIR [TLS_PORT [HTTP_PORT]]
    local D=$1 AP CP OP MP kind p
    SWIFT_TLS_PORT=${2:-$(_swift_free_port)}
    SWIFT_HTTP_PORT=${3:-$(_swift_free_port)}
    SWIFT_PIDS=()
    mkdir -p "$D/etc" "$D/srv/d1" "$D/run" "$D/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
        -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$D/tls/key.pem" -out "$D/tls/cert.pem" >/dev/null 2>&1 || return 1
    AP=$(_swift_free_port); CP=$(_swift_free_port); OP=$(_swift_free_port)
    MP=$(_swift_free_port) # no memcached: tempauth needs the middleware, not the server
    printf '[swift-hash]\nswift_hash_path_prefix = crestic-test\nswift_hash_path_suffix = crestic-test\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n' \
        >"$D/etc/swift.conf"
    _swift_rings "$D/etc" "$AP" "$CP" "$OP" || return 1
    echo "$SWIFT_TLS_PORT $SWIFT_HTTP_PORT $AP $CP $OP" >"$D/run/ports"
    local common="bind_ip = 127.0.0.1
workers = 1
user = root
swift_dir = $D/etc
devices = $D/srv
mount_check = false
log_facility = LOG_LOCAL0
log_level = WARNING"
    for kind in account container object; do
        case $kind in account) p=$AP ;; container) p=$CP ;; object) p=$OP ;; esac
        printf '[DEFAULT]\nbind_port = %s\n%s\n[pipeline:main]\npipeline = %s-server\n[app:%s-server]\nuse = egg:swift#%s\n' \
            "$p" "$common" "$kind" "$kind" "$kind" >"$D/etc/$kind-server.conf"
    done
    printf '[DEFAULT]\nbind_port = %s\ncert_file = %s\nkey_file = %s\n%s\n%s\n' "$SWIFT_TLS_PORT" "$D/tls/cert.pem" "$D/tls/key.pem" \
        "$common" "$(_swift_proxy_filters "$MP" us-east-1)" >"$D/etc/proxy-tls.conf"
    printf '[DEFAULT]\nbind_port = %s\n%s\n%s\n' "$SWIFT_HTTP_PORT" "$common" "$(_swift_proxy_filters "$MP" eu-central-1)" \
        >"$D/etc/proxy-http.conf"
    for kind in account container object; do
        "swift-$kind-server" "$D/etc/$kind-server.conf" >"$D/run/$kind.log" 2>&1 &
        SWIFT_PIDS+=($!)
    done
    swift-proxy-server "$D/etc/proxy-tls.conf" >"$D/run/proxy-tls.log" 2>&1 &
    SWIFT_PIDS+=($!)
    swift-proxy-server "$D/etc/proxy-http.conf" >"$D/run/proxy-http.log" 2>&1 &
    SWIFT_PIDS+=($!)
}

swift_ready() { # DIR [TLS_PORT]
    local tls http p
    read -r tls http p 2>/dev/null <"$1/run/ports" || return 1
    [ -z "${2:-}" ] || [ "$2" = "$tls" ] || return 1
    for p in $p; do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || return 1; done
    curl -sf -o /dev/null "http://127.0.0.1:$http/healthcheck" &&
        curl -sf -o /dev/null --cacert "$1/tls/cert.pem" "https://127.0.0.1:$tls/healthcheck"
}

swift_wait() { # DIR [SECONDS]
    local i
    for i in $(seq $(( ${2:-90} * 10 ))); do
        swift_ready "$1" && return 0
        sleep 0.1
    done
    return 1
}

swift_stop() {
    local p
    for p in "${SWIFT_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${SWIFT_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    SWIFT_PIDS=()
    return 0
}
