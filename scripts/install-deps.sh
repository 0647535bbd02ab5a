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
    ca-certificates git
)

missing=()
for p in "${PACKAGES[@]}"; do
    # "install ok installed" only for a fully installed package
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
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
echo "install-deps: done"
