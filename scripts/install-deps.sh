#!/usr/bin/env bash
# Install what crestic needs to build and test, on Debian 12 (bookworm).
# Idempotent: only packages that are missing are installed; when nothing is
# missing it does nothing (no apt-get update either).  Quiet, but apt's errors
# are shown.  Uses sudo only when not root.
set -euo pipefail

PACKAGES=(
    build-essential cmake pkg-config          # compiler, build
    libcurl4-openssl-dev libssl-dev           # HTTP backends; AES, SHA-256, Poly1305, HMAC, RSA
    libzstd-dev libsodium-dev libcjson-dev    # compression; scrypt; JSON
    libcmocka-dev                             # unit tests
    clang libclang-rt-14-dev                  # fuzz targets (libFuzzer) and ASan/UBSan runtimes for clang
    restic                                    # the reference peer (0.14 on Debian 12)
    python3                                   # test tools (tests/tools/*.py: standard library only)
    python3-cryptography python3-zstandard    # fixture tools (tests/fixtures/tools), crypto cross-checks
    attr                                      # getfattr/setfattr
    time                                      # GNU /usr/bin/time
    xxd                                       # hex dumps in tests and scripts
    tzdata                                    # local-time output tests (TZ=Asia/Kolkata, ...)
    rclone                                    # REST test server (rclone serve restic), loopback only
    openssl curl                              # self-signed TLS certificate and readiness checks in backend tests
    openssh-client openssh-server             # SFTP backend and its test server (a private sshd on loopback)
    swift-proxy swift-object swift-container swift-account python3-swift  # S3 test server (Swift + s3api, checks SigV4)
    ca-certificates git
)

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    PACKAGES+=(nodejs npm)                    # only when the machine has no Node.js of its own
fi

missing=()
for p in "${PACKAGES[@]}"; do
    # "install ok installed" only for a fully installed package
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
        missing+=("$p")
    fi
done

# npm test servers (s3rver, azurite), into .deps/npm of the checkout; nothing
# when they are already there.  node/npm come from the machine, or Debian.
npm_servers() {
    local root dir
    root=$(cd "$(dirname "$0")/.." && pwd)
    dir=$root/.deps/npm
    [ -e "$dir/node_modules/s3rver/package.json" ] && [ -e "$dir/node_modules/azurite/package.json" ] && return 0
    command -v npm >/dev/null 2>&1 || { echo "install-deps: npm not found" >&2; return 1; }
    mkdir -p "$dir"
    echo "install-deps: npm install s3rver@3.7.1 azurite@3.35.0 (test servers, into .deps/npm)"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error --prefix "$dir" s3rver@3.7.1 azurite@3.35.0 >"$dir/install.log" 2>&1) ||
        { tail -n 20 "$dir/install.log" >&2; echo "install-deps: npm install failed" >&2; return 1; }
}

if [ ${#missing[@]} -eq 0 ]; then
    npm_servers
    exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
        echo "install-deps: not root and no sudo; please install: ${missing[*]}" >&2
        exit 1
    fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! $SUDO apt-get update -qq >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-deps: apt-get update failed" >&2
    exit 1
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
    grep -E '^(E|W):|rror' "$log" >&2 || tail -n 30 "$log" >&2
    echo "install-deps: apt-get install failed" >&2
    exit 1
fi
npm_servers
echo "install-deps: done"
