#!/usr/bin/env bash
# Sets up a Debian 12 machine for the workbench, builds it in Release, and runs it or its tests.
#   bash packaging/bootstrap.sh run     install dependencies, build, open the workbench
#   bash packaging/bootstrap.sh test    install dependencies, build, run every test through ctest
#   bash packaging/bootstrap.sh build   install dependencies and build only
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
    build-essential cmake ninja-build pkg-config ccache
    qt6-base-dev libqt6sql6-sqlite libqcustomplot-dev
    libtorch-dev libopenblas0-pthread
    libsentencepiece-dev sentencepiece
    nlohmann-json3-dev
    clang libclang-rt-14-dev
    xvfb xauth
    # The packaging test: dpkg-shlibdeps for CPack, the desktop entry, metainfo and man page checkers.
    dpkg-dev desktop-file-utils appstream file groff-base
    # The cluster suite starts a one-node Slurm of its own (tests/slurm_cluster.sh).
    slurmctld slurmd slurm-client munge
)

install_dependencies() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "== All Debian dependencies are installed"
        return
    fi
    echo "== Installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

build() {
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
    cmake --build build -j "$(nproc)"
}

case "${1:-}" in
    run)
        install_dependencies
        build
        exec build/bin/phatgoose-workbench "${@:2}"
        ;;
    test)
        install_dependencies
        build
        ctest --test-dir build --output-on-failure -j 2
        ;;
    build)
        install_dependencies
        build
        ;;
    *)
        echo "usage: $0 run|test|build" >&2
        exit 2
        ;;
esac
