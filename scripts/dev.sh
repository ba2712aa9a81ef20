#!/usr/bin/env bash
# provline developer entry point. The README's two commands are:
#   ./scripts/dev.sh demo    install missing Debian packages, build, run `provline demo`
#   ./scripts/dev.sh test    install missing Debian packages, build, run the whole test suite
# and CI adds:
#   ./scripts/dev.sh test-asan   the suite under ASan+UBSan (no recovery)
#   ./scripts/dev.sh fuzz        every libFuzzer target for a fixed time (PL_FUZZ_SECONDS, default 20)
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-$(nproc)}

# Debian 12 packages (reference/DEPENDENCIES.md §2).
PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libmbedtls-dev libcoap3-dev nanopb libnanopb-dev protobuf-compiler python3-protobuf
      libzmq3-dev libczmq-dev libserialport-dev libcriterion-dev
      libsqlite3-dev sqlite3 libpq-dev postgresql-15 socat openssl
      libinih-dev libmicrohttpd-dev libjansson-dev)

deps() {
    local missing=()
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    echo "dev.sh: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build() { # preset
    cmake --preset "$1" >/dev/null
    cmake --build --preset "$1" -j "$JOBS"
    [ "$1" = dev ] && ln -sf build/compile_commands.json compile_commands.json
    return 0
}

case "${1:-}" in
    demo)
        deps
        build dev
        shift
        exec build/bin/provline demo "$@"
        ;;
    test)
        deps
        build dev
        ctest --preset dev
        ;;
    test-asan)
        deps
        build asan
        ctest --preset asan
        ;;
    fuzz)
        deps
        cmake --preset fuzz -DPL_FUZZ_SECONDS="${PL_FUZZ_SECONDS:-20}" >/dev/null
        cmake --build --preset fuzz -j "$JOBS"
        ctest --preset fuzz
        ;;
    bench)
        deps
        build release
        for b in build-release/bench/bench_*; do [ -x "$b" ] && "$b"; done
        ;;
    *)
        echo "usage: $0 demo|test|test-asan|fuzz|bench" >&2
        exit 2
        ;;
esac
