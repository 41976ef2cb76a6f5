#!/usr/bin/env bash
# The Debian package end to end (ctest label `packaging`): build it with CPack, check its metadata and
# contents, install it on this machine with dpkg, run both installed programs from /usr/bin (the CLI on
# the installed demo model, the workbench under Xvfb until it has saved a screenshot), then remove it and
# check that nothing is left. A throw-away root made with debootstrap needs a Debian mirror and minutes
# of downloads, so this installs on the machine itself, which needs root (or passwordless sudo), and
# refuses to touch a machine where the package or its files are already installed.
#
#   bash packaging/test_package.sh BUILD_DIR [DEMO_DIR]
# DEMO_DIR is the demo workspace the build installs (CMake's PHATGOOSE_DEMO_DIR, default resources/demo):
# when it exists the package must ship it.
set -euo pipefail
# One collation for sort and comm; UTF-8 so Qt does not complain about the locale.
export LC_ALL=C.UTF-8

[ $# -eq 1 ] || [ $# -eq 2 ] || { echo "usage: $0 BUILD_DIR [DEMO_DIR]" >&2; exit 2; }
build=$(cd "$1" && pwd)
demo_source=${2:-$(cd "$(dirname "$0")/.." && pwd)/resources/demo}
package=phatgoose-workbench
app_id=io.github.phatgoose.Workbench
started=$(date +%s)

fail() {
    echo "test_package: FAIL: $*" >&2
    exit 1
}
step() { echo "== [$(($(date +%s) - started)) s] $*"; }

# Root for dpkg; a developer without it gets the reason, not a silent pass.
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo -n true 2>/dev/null ||
        fail "installing the package into /usr needs root or passwordless sudo; run this test as root (CI does)" \
             "or leave it out: ctest -LE packaging"
    sudo="sudo -n"
fi
for tool in cpack dpkg dpkg-deb dpkg-shlibdeps desktop-file-validate appstreamcli xvfb-run file; do
    command -v "$tool" >/dev/null ||
        fail "'$tool' is missing: run 'bash packaging/bootstrap.sh build' to install the packaging tools"
done

installed() { dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; }
if installed; then
    fail "$package is already installed on this machine; this test would replace and then remove it." \
         "Remove it first: dpkg -r $package"
fi
for f in /usr/bin/phatgoose /usr/bin/phatgoose-workbench /usr/share/phatgoose; do
    [ ! -e "$f" ] || fail "$f exists outside any package (a 'cmake --install --prefix /usr'?); this test" \
                          "would overwrite and then delete it. Remove it first."
done

work=$(mktemp -d /tmp/phatgoose-package-test.XXXXXX)
we_installed=0
cleanup() {
    local status=$?
    if [ "$we_installed" -eq 1 ] && installed; then
        echo "== removing $package after a failure"
        $sudo dpkg -P "$package" >/dev/null || echo "test_package: could not remove $package" >&2
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# dpkg waits for no one: another apt or dpkg run (an agent installing a package) holds its lock briefly.
dpkg_locked() {
    local tries=0
    until $sudo dpkg "$@" 2>"$work/dpkg.err"; do
        if grep -q "lock" "$work/dpkg.err" && [ $tries -lt 60 ]; then
            tries=$((tries + 1))
            sleep 5
            continue
        fi
        cat "$work/dpkg.err" >&2
        return 1
    done
    cat "$work/dpkg.err" >&2
}

step "building the .deb with CPack"
cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work/cpack" >"$work/cpack.log" 2>&1 ||
    { cat "$work/cpack.log" >&2; fail "cpack -G DEB failed"; }
debs=("$work"/cpack/*.deb)
[ ${#debs[@]} -eq 1 ] || fail "cpack made no single .deb: ${debs[*]}"
[ -s "${debs[0]}" ] || fail "cpack made no .deb"
deb=${debs[0]}
echo "$(basename "$deb"): $(du -h "$deb" | cut -f1)"

step "package metadata (dpkg-deb -I)"
dpkg-deb -f "$deb"
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = "$package" ] || fail "package name is '$(field Package)'"
version=$(field Version)
[ -n "$version" ] || fail "no Version"
[ "$(field Section)" = science ] || fail "section is '$(field Section)', not science"
[ -n "$(field Maintainer)" ] || fail "no Maintainer"
[ -n "$(field Description)" ] || fail "no Description"
depends=$(field Depends)
# The explicit run-time ones, and a sample of what dpkg-shlibdeps must have found in the ELF files.
for dep in libopenblas0-pthread libqt6sql6-sqlite libtorch libqt6widgets6 libqt6sql6 libsentencepiece0 \
           libqcustomplot; do
    grep -q "$dep" <<<"$depends" || fail "Depends lacks $dep: $depends"
done

step "package contents (dpkg-deb -c)"
dpkg-deb -c "$deb" | sed 's/^/  /'  | grep -v '/share/phatgoose/demo/.' || true
# Names only (dpkg-deb -c's columns break on spaces and links), folders left out.
dpkg-deb --fsys-tarfile "$deb" | tar -t | sed 's|^\./|/|' | grep -v '/$' | sort >"$work/files"
echo "  ... and $(grep -c '/share/phatgoose/demo/' "$work/files" || true) demo workspace files"
for f in /usr/bin/phatgoose /usr/bin/phatgoose-workbench /usr/share/applications/$app_id.desktop \
         /usr/share/metainfo/$app_id.metainfo.xml /usr/share/icons/hicolor/scalable/apps/$app_id.svg \
         /usr/share/man/man1/phatgoose.1.gz /usr/share/man/man1/phatgoose-workbench.1.gz; do
    grep -qx "$f" "$work/files" || fail "the package lacks $f"
done
grep -Eqx '/usr/lib/([^/]+/)?phatgoose/libphatgoose_spm\.so' "$work/files" ||
    fail "the package lacks the sentencepiece shim under /usr/lib/.../phatgoose/"
demo_shipped=0
if grep -qx /usr/share/phatgoose/demo/workspace.json "$work/files"; then
    demo_shipped=1
elif [ -e "$demo_source/workspace.json" ]; then
    fail "$demo_source holds the demo workspace but the package does not ship it"
fi
if grep -v '^/usr/' "$work/files"; then fail "files outside /usr"; fi

step "desktop entry, AppStream metainfo and man pages, as shipped"
dpkg-deb -x "$deb" "$work/root"
desktop-file-validate "$work/root/usr/share/applications/$app_id.desktop"
appstreamcli validate --no-net "$work/root/usr/share/metainfo/$app_id.metainfo.xml"
if command -v groff >/dev/null; then
    for page in phatgoose phatgoose-workbench; do
        # -ww: every warning; troff reports a malformed page on stderr even when it still renders.
        zcat "$work/root/usr/share/man/man1/$page.1.gz" | groff -man -Tutf8 -ww -z 2>"$work/man.err"
        [ ! -s "$work/man.err" ] || { cat "$work/man.err" >&2; fail "man page $page.1 has troff warnings"; }
    done
fi

step "dpkg -i"
we_installed=1
dpkg_locked -i "$deb" || fail "dpkg -i failed (missing dependencies? 'bash packaging/bootstrap.sh build' installs them)"
installed || fail "$package is not installed after dpkg -i"

# Programs run as a user would: a fresh home, so the demo copy and settings land in the throw-away folder.
export HOME="$work/home" XDG_DATA_HOME="$work/home/.local/share" XDG_CONFIG_HOME="$work/home/.config" \
       XDG_CACHE_HOME="$work/home/.cache" XDG_RUNTIME_DIR="$work/runtime"
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
cd "$work"

step "/usr/bin/phatgoose --version"
out=$(timeout 60 /usr/bin/phatgoose --version)
echo "$out"
[ "$out" = "phatgoose $version" ] || fail "expected 'phatgoose $version'"
timeout 60 /usr/bin/phatgoose --help >/dev/null

if [ "$demo_shipped" -eq 1 ]; then
    workspace=/usr/share/phatgoose/demo
else
    # No demo workspace in this source tree yet: the installed CLI makes a miniature one, which proves
    # the engine and the shim work from /usr as well.
    step "no demo shipped: /usr/bin/phatgoose demo build --quick"
    workspace="$work/made-demo"
    timeout 900 /usr/bin/phatgoose demo build --quick --out "$workspace" >"$work/demo.log" 2>&1 ||
        { tail -20 "$work/demo.log" >&2; fail "phatgoose demo build --quick failed"; }
fi

step "/usr/bin/phatgoose info $workspace/model"
timeout 120 /usr/bin/phatgoose info "$workspace/model" | tee "$work/info.txt"
[ -s "$work/info.txt" ] || fail "phatgoose info printed nothing"
# Tokenizing loads the sentencepiece shim through dlopen from the installed private libdir.
timeout 120 /usr/bin/phatgoose tokenize --model "$workspace/model" "reverse: free software" ||
    fail "phatgoose tokenize failed: the installed shim was not found or did not load"

# With no folder given, a first start (fresh home, no recent workspace) opens the shipped demo through
# the user's copy; the made-up workspace must be named.
gui_args=()
[ "$demo_shipped" -eq 1 ] || gui_args=("$workspace")
user_demo="$XDG_DATA_HOME/phatgoose/phatgoose-workbench/demo"
step "xvfb-run -a /usr/bin/phatgoose-workbench ${gui_args[*]} --probe ... --screenshot"
# The real X11 platform plugin, not the offscreen one the GUI unit tests use.
timeout 300 env -u QT_QPA_PLATFORM xvfb-run -a -s "-screen 0 1280x900x24" \
    /usr/bin/phatgoose-workbench "${gui_args[@]}" \
    --probe "reverse: free software program" --screenshot "$work/workbench.png" >"$work/gui.log" 2>&1 ||
    { cat "$work/gui.log" >&2; fail "the installed workbench failed or did not finish within 300 s"; }
[ -s "$work/workbench.png" ] || { cat "$work/gui.log" >&2; fail "the workbench saved no screenshot"; }
file "$work/workbench.png"
file "$work/workbench.png" | grep -Eq 'PNG image data, [0-9]{3,} x [0-9]{3,}' || fail "the screenshot is not a PNG"
if [ "$demo_shipped" -eq 1 ]; then
    for f in workspace.json .phatgoose-demo-stamp; do
        [ -f "$user_demo/$f" ] || fail "the workbench did not open the demo through a user copy ($user_demo/$f)"
    done
    echo "the demo was copied to $user_demo ($(du -sh "$user_demo" | cut -f1))"
fi

step "the installed files are unchanged (dpkg -V) and nothing was added beside them"
# Programs copy the shipped demo before writing to a workspace; they never write in place.
changed=$(dpkg -V "$package" || true)
[ -z "$changed" ] || fail "installed files were modified: $changed"
if [ -d /usr/share/phatgoose ]; then
    added=$(find /usr/share/phatgoose -type f | sort | comm -23 - "$work/files")
    [ -z "$added" ] || fail "files appeared in /usr/share/phatgoose: $added"
fi

step "dpkg -r"
dpkg_locked -r "$package" || fail "dpkg -r failed"
dpkg_locked -P "$package" || fail "dpkg -P failed"
we_installed=0
! installed || fail "$package is still installed after dpkg -r"
left=$(while read -r f; do [ ! -e "$f" ] || echo "$f"; done <"$work/files")
[ -z "$left" ] || fail "dpkg -r left files behind: $left"
for d in /usr/share/phatgoose /usr/lib/phatgoose /usr/lib/*-linux-gnu/phatgoose; do
    [ ! -e "$d" ] || fail "dpkg -r left $d behind"
done
step "passed: $(basename "$deb") built, installed, ran and removed cleanly"
