#!/usr/bin/env bash
# Build a real Kubernetes API for the end-to-end tests: kube-apiserver and kube-controller-manager
# v1.20.2 from Debian bookworm's `kubernetes` source package, compiled offline with Debian's
# golang-1.19; etcd 3.4 and kubectl 1.20.2 come from Debian's etcd-server and kubernetes-client
# .debs. Everything is downloaded with a PRIVATE apt configuration (own sources.list, state and
# cache dirs under the build tree) and unpacked with dpkg-deb: nothing is installed system-wide
# and the system's apt state is not touched.
#
# Idempotent and cached: the binaries land in ${MBO_CACHE:-$HOME/.cache/mbo}/kube-1.20.2/bin and
# the script exits at once when they are there. A cold build takes about 4-5 minutes on 2 cores
# and about 3 GB of disk under ${MBO_KUBE_BUILD_DIR:-${TMPDIR:-/tmp}} (deleted afterwards).
#
# Environment:
#   MBO_CACHE              cache root (default $HOME/.cache/mbo)
#   MBO_KUBE_BUILD_DIR     where the temporary build tree goes (default $TMPDIR or /tmp)
#   MBO_KUBE_APT_SOURCES   a ready sources.list (deb + deb-src lines for bookworm) to use instead
#                          of the one derived from /etc/apt/sources.list{,.d}
#   MBO_KUBE_KEEP_BUILD=1  keep the build tree (for debugging a failed build)
set -euo pipefail

KUBE_VERSION=1.20.2
KUBE_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56 # the upstream v1.20.2 tag
SUITE=bookworm                                       # golang-1.19 and kubernetes live here
CACHE_ROOT="${MBO_CACHE:-${HOME:?set HOME or MBO_CACHE}/.cache/mbo}"
CACHE="$CACHE_ROOT/kube-$KUBE_VERSION"
BINARIES="kube-apiserver kube-controller-manager etcd kubectl"
DEBS="golang-1.19-go golang-1.19-src rsync libpopt0 libxxhash0 golang-github-modern-go-reflect2-dev
etcd-server kubernetes-client"
STARTED=$(date +%s)

say() { echo "build.sh [$(($(date +%s) - STARTED))s]: $*"; }
die() {
    echo "build.sh: error: $*" >&2
    exit 1
}

cached() {
    local b
    for b in $BINARIES; do
        [ -x "$CACHE/bin/$b" ] || return 1
    done
}

if cached; then
    echo "build.sh: kube $KUBE_VERSION binaries cached in $CACHE/bin"
    exit 0
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/kube-$KUBE_VERSION.lock"
if ! flock -n 9; then
    say "another build holds $CACHE_ROOT/kube-$KUBE_VERSION.lock: waiting for it"
    flock 9
fi
if cached; then # another build finished while we waited
    echo "build.sh: kube $KUBE_VERSION binaries cached in $CACHE/bin"
    exit 0
fi
for tool in apt-get dpkg-deb dpkg make tar; do
    command -v "$tool" >/dev/null || die "$tool not found (this recipe needs a Debian machine)"
done

BUILD_PARENT="${MBO_KUBE_BUILD_DIR:-${TMPDIR:-/tmp}}"
mkdir -p "$BUILD_PARENT"
WORK=$(mktemp -d "$BUILD_PARENT/mbo-kube-build.XXXXXX")
cleanup() {
    [ -z "${TICKER:-}" ] || kill "$TICKER" 2>/dev/null || true
    if [ "${MBO_KUBE_KEEP_BUILD:-}" = 1 ]; then
        echo "build.sh: build tree kept in $WORK" >&2
    else
        chmod -R u+w "$WORK" 2>/dev/null || true
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP # so that cleanup runs
APT="$WORK/apt"
ROOT="$WORK/root" # the private root the .debs are unpacked into
say "building kube $KUBE_VERSION in $WORK (cache: $CACHE)"

# --------------------------------------------------------------------------- private apt

# Print "URI SUITE SIGNED-BY" (SIGNED-BY may be "-") for every enabled `deb` entry of the
# machine's apt sources, one-line (*.list) and deb822 (*.sources) formats alike.
machine_sources() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk '
            { sub(/#.*/, "") }
            $1 != "deb" { next }
            {
                i = 2; key = "-"
                if ($2 ~ /^\[/) {
                    for (; i <= NF; i++) {
                        if ($i ~ /signed-by=/) { key = $i; sub(/.*signed-by=/, "", key); sub(/\]$/, "", key) }
                        if ($i ~ /\]$/) break
                    }
                    i++
                }
                print $i, $(i + 1), key
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '
            function flush(  u, s, nu, ns, us, ss) {
                if (types ~ /(^| )deb( |$)/ && tolower(enabled) != "no") {
                    nu = split(uris, us, " "); ns = split(suites, ss, " ")
                    for (u = 1; u <= nu; u++) for (s = 1; s <= ns; s++) print us[u], ss[s], key
                }
                types = uris = suites = enabled = ""; key = "-"; field = ""
            }
            BEGIN { key = "-" }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]/ { field = ""; next }  # continuation line (an inline key): not a path
            {
                field = tolower($0); sub(/:.*/, "", field)
                value = $0; sub(/^[^:]*:[ \t]*/, "", value); sub(/[ \t]+$/, "", value)
                if (field == "types") types = value
                else if (field == "uris") uris = value
                else if (field == "suites") suites = value
                else if (field == "enabled") enabled = value
                else if (field == "signed-by" && value ~ /^\//) key = value
            }
            END { flush() }' "$f"
    done
}

# Write the private sources.list: deb + deb-src for the machine's Debian mirrors, with the
# machine's codename replaced by bookworm (identity on bookworm itself).
write_sources() {
    local codename id uri suite key opt
    if [ -n "${MBO_KUBE_APT_SOURCES:-}" ]; then
        cp "$MBO_KUBE_APT_SOURCES" "$APT/sources.list"
        return
    fi
    # shellcheck disable=SC1091
    id=$(. /etc/os-release && echo "${ID:-}")
    # shellcheck disable=SC1091
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ "$id" = debian ] && [ -n "$codename" ] ||
        die "not a Debian machine (ID=$id): set MBO_KUBE_APT_SOURCES to a bookworm sources.list"
    machine_sources | sort -u | while read -r uri suite key; do
        case "$suite" in
        "$codename" | "$codename"-*) suite="$SUITE${suite#"$codename"}" ;;
        *) continue ;; # a third-party repository
        esac
        opt=""
        [ "$key" = - ] || opt="[signed-by=$key] "
        echo "deb ${opt}$uri $suite main"
        echo "deb-src ${opt}$uri $suite main"
    done >"$APT/sources.list"
    [ -s "$APT/sources.list" ] ||
        die "no Debian $codename entry in /etc/apt/sources.list{,.d}: set MBO_KUBE_APT_SOURCES"
}

setup_apt() {
    mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$APT/sources.list.d"
    : >"$APT/status"
    write_sources
    APT_OPTS=(
        -o "Dir::State=$APT" -o "Dir::State::Lists=$APT/lists" -o "Dir::State::status=$APT/status"
        -o "Dir::Cache=$APT" -o "Dir::Cache::archives=$APT/archives"
        -o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=$APT/sources.list.d"
        -o "APT::Sandbox::User=$(id -un)" -o "APT::Get::Show-Versions=true" -q
    )
    say "private apt sources:"
    sed 's/^/    /' "$APT/sources.list"
}

# apt-get with the private configuration; its log goes to $WORK/apt.log, downloads are echoed.
apt_get() {
    local log="$WORK/apt.log"
    : >"$log"
    apt-get "${APT_OPTS[@]}" "$@" >"$log" 2>&1 || die "apt-get $1 failed:
$(tail -20 "$log")"
    grep -E '^(Get|Fetched)' "$log" | sed 's/^/    /' || true
}

download() {
    say "apt-get update (private lists in $APT/lists)"
    apt_get update >/dev/null
    say "apt-get source --download-only kubernetes"
    mkdir -p "$WORK/src" "$WORK/debs"
    (cd "$WORK/src" && apt_get source --download-only kubernetes)
    # shellcheck disable=SC2086
    say "apt-get download" $DEBS
    # shellcheck disable=SC2086
    (cd "$WORK/debs" && apt_get download $DEBS)
}

# --------------------------------------------------------------------------- build

unpack() {
    local deb dsc
    say "unpacking the .debs into $ROOT"
    for deb in "$WORK"/debs/*.deb; do
        dpkg-deb -x "$deb" "$ROOT"
    done
    dsc=$(echo "$WORK"/src/kubernetes_*.dsc)
    [ -f "$dsc" ] || die "no kubernetes .dsc was downloaded"
    SRC="$WORK/src/kubernetes"
    if command -v dpkg-source >/dev/null; then
        say "dpkg-source -x $(basename "$dsc")"
        dpkg-source -q -x --no-check "$dsc" "$SRC" >/dev/null
    else # no dpkg-dev: the upstream tree alone (Debian's patches only touch kubectl printing)
        say "unpacking the upstream tarball (no dpkg-source on this machine)"
        mkdir -p "$SRC"
        tar -xzf "$WORK"/src/kubernetes_*.orig.tar.gz -C "$SRC" --strip-components=1
    fi
}

# The vendored reflect2 1.0.1 faults in Go >= 1.18 on the first custom-resource create
# (`fatal error: fault ... reflect2 ... UnsafeIterate`): take Debian's reflect2 1.0.2 instead.
fix_reflect2() {
    local vendored="$SRC/vendor/github.com/modern-go/reflect2"
    local debian="$ROOT/usr/share/gocode/src/github.com/modern-go/reflect2"
    [ -d "$debian" ] || die "Debian's reflect2 sources not found in $debian"
    say "replacing vendor/github.com/modern-go/reflect2 with Debian's reflect2 1.0.2"
    rm -f "$vendored"/*.go "$vendored"/*.s
    cp "$debian"/*.go "$debian"/*.s "$vendored"/
}

# hack/lib/golang.sh places the binaries with rsync: run the unpacked one on its unpacked libs.
rsync_wrapper() {
    local libs="" d
    for d in "$ROOT"/usr/lib/*-linux-gnu "$ROOT"/lib/*-linux-gnu; do
        [ -d "$d" ] && libs="$libs${libs:+:}$d"
    done
    mkdir -p "$WORK/bin"
    cat >"$WORK/bin/rsync" <<EOF
#!/bin/sh
LD_LIBRARY_PATH="$libs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$ROOT/usr/bin/rsync" "\$@"
EOF
    chmod +x "$WORK/bin/rsync"
    "$WORK/bin/rsync" --version >/dev/null || die "the unpacked rsync does not run"
}

compile() {
    local arch
    arch=$(dpkg --print-architecture)
    export GOROOT="$ROOT/usr/lib/go-1.19"
    export PATH="$WORK/bin:$GOROOT/bin:$PATH"
    export GOPATH="$WORK/gopath" GOCACHE="$WORK/gocache" GOPROXY=off GOFLAGS= GOENV=off
    export CGO_ENABLED=0
    export KUBE_GIT_VERSION="v$KUBE_VERSION" KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20
    export KUBE_GIT_TREE_STATE=archive KUBE_GIT_COMMIT="$KUBE_COMMIT"
    export KUBE_BUILD_PLATFORMS="linux/$arch"
    say "$(go version); make WHAT=\"cmd/kube-apiserver cmd/kube-controller-manager\" (about 4 min)"
    # A progress line every 30 s; on TERM the ticker kills its sleep too (no orphan left).
    (
        trap 'kill "$!" 2>/dev/null; exit 0' TERM
        while sleep 30 & wait "$!"; do say "still compiling (log: $WORK/make.log)"; done
    ) 9>&- &
    TICKER=$!
    make -C "$SRC" WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$WORK/make.log" 2>&1 ||
        die "make failed:
$(tail -40 "$WORK/make.log")"
    kill "$TICKER"
    wait "$TICKER" || true
    TICKER=
    OUT="$SRC/_output/local/bin/linux/$arch"
}

install_cache() {
    local staging="$CACHE/bin.new.$$" b
    say "installing into $CACHE/bin"
    rm -rf "$staging"
    mkdir -p "$staging"
    cp "$OUT/kube-apiserver" "$OUT/kube-controller-manager" "$staging/"
    cp "$ROOT/usr/bin/etcd" "$ROOT/usr/bin/kubectl" "$staging/"
    for b in $BINARIES; do
        "$staging/$b" --version >/dev/null 2>&1 || "$staging/$b" version --client >/dev/null ||
            die "$b does not run"
    done
    {
        echo "kube-apiserver, kube-controller-manager: $("$staging/kube-apiserver" --version)" \
            "built from Debian source kubernetes $(sed -n 's/^Version: //p' "$WORK"/src/*.dsc)" \
            "with $(go version)"
        for deb in "$WORK"/debs/etcd-server_*.deb "$WORK"/debs/kubernetes-client_*.deb; do
            echo "$(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version) (Debian .deb)"
        done
        echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(($(date +%s) - STARTED))s"
    } >"$staging/VERSIONS"
    rm -rf "$CACHE/bin"
    mv "$staging" "$CACHE/bin"
}

setup_apt
download
unpack
fix_reflect2
rsync_wrapper
compile
install_cache
say "done:"
sed 's/^/    /' "$CACHE/bin/VERSIONS"
say "deleting the build tree $WORK"
