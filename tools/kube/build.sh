#!/usr/bin/env bash
# Build kube-apiserver and kube-controller-manager from Debian's `kubernetes` source package and
# cache them by version, for the test suite's real API server (tests/support/real_cluster.py).
#
# Only the first run pays (about 8 min of CPU); later runs find the cached binaries and return at
# once. Safe against concurrent runs (flock on the cache directory); a failed build leaves no cache
# entry (binaries are moved into place with one rename). Installs what it needs with apt-get
# (etcd-server is the etcd the fixture runs). Recipe and its trap: docs/operator.md, "How it is
# tested".
#
# Environment: DSX_CACHE_DIR (default ~/.cache/dsx); binaries land in $DSX_CACHE_DIR/kube/1.20.2/.
# Prints the cache directory on stdout when done.
set -euo pipefail

KUBE_VERSION=1.20.2
# Debian's package carries the 1.20.2 sources under a higher version number.
DEBIAN_VERSION_PATTERN='really1\.20\.2'
CACHE_ROOT="${DSX_CACHE_DIR:-$HOME/.cache/dsx}/kube"
DEST="$CACHE_ROOT/$KUBE_VERSION"
BINARIES=(kube-apiserver kube-controller-manager)
APT_PACKAGES=(golang-go etcd-server rsync jq golang-github-modern-go-reflect2-dev openssl)
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2

log() { echo "tools/kube/build.sh: $*" >&2; }

cached() {
    local b
    for b in "${BINARIES[@]}"; do [[ -x "$DEST/$b" ]] || return 1; done
    command -v etcd >/dev/null && command -v openssl >/dev/null
}

if cached; then echo "$DEST"; exit 0; fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
if ! flock -n 9; then
    log "another build holds $CACHE_ROOT/.lock; waiting for it"
    flock 9
fi
if cached; then echo "$DEST"; exit 0; fi
# Leftovers of a build that was killed (we hold the lock, so none is running).
rm -rf "$CACHE_ROOT"/.work.* "$CACHE_ROOT"/.staging.*

# 1. Debian source packages for this machine's suite, in a file of our own, if none is configured.
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}")
has_deb_src() {
    # One-line format: "deb-src [opts] URI SUITE ..."; deb822 format: a stanza whose Types has
    # deb-src and whose Suites has the suite.
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        grep -Eq "^[[:space:]]*deb-src[[:space:]]+(\[[^]]*\][[:space:]]+)?[^[:space:]]+[[:space:]]+$suite([[:space:]]|$)" && return 0
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -e "$f" ]] || continue
        awk -v suite="$suite" '
            function check() { if (types ~ /(^|[ \t])deb-src([ \t]|$)/ && suites ~ ("(^|[ \t])" suite "([ \t]|$)") && enabled) found = 1 }
            BEGIN { found = 0; types = ""; suites = ""; enabled = 1 }
            /^[ \t]*$/ { check(); types = ""; suites = ""; enabled = 1; next }
            /^Types:/ { types = $0 }
            /^Suites:/ { suites = $0 }
            /^Enabled:[ \t]*no/ { enabled = 0 }
            END { check(); exit found ? 0 : 1 }' "$f" && return 0
    done
    return 1
}
if ! has_deb_src; then
    # Reuse the URIs and key of the machine's own `deb` entry for the suite when there is one.
    uris=$(awk -v suite="$suite" '
        /^[ \t]*$/ { if (t ~ /deb/ && s ~ (" " suite "( |$)") && u != "") { print u; exit } t = s = u = ""; next }
        /^Types:/ { t = $0 } /^Suites:/ { s = $0 } /^URIs:/ { u = $2 }
        END { if (t ~ /deb/ && s ~ (" " suite "( |$)") && u != "") print u }' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
    uris=${uris:-http://deb.debian.org/debian}
    signed_by=/usr/share/keyrings/debian-archive-keyring.gpg
    log "no deb-src entry for $suite: adding /etc/apt/sources.list.d/dsx-deb-src.sources ($uris)"
    {
        echo "# Added by dsx tools/kube/build.sh: Debian source packages (apt-get source kubernetes)."
        echo "Types: deb-src"
        echo "URIs: $uris"
        echo "Suites: $suite"
        echo "Components: main"
        if [[ -r $signed_by ]]; then echo "Signed-By: $signed_by"; fi
    } | "${SUDO[@]}" tee /etc/apt/sources.list.d/dsx-deb-src.sources >/dev/null
fi

# 2. Toolchain, etcd and the reflect2 that works with Debian's Go.
log "apt-get update and install: ${APT_PACKAGES[*]}"
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "${APT_PACKAGES[@]}" >&2

# 3. The source package, unpacked in a scratch directory that is always removed.
WORK=$(mktemp -d "$CACHE_ROOT/.work.XXXXXX")
trap 'rm -rf "$WORK" "${staging:-}"' EXIT
trap 'exit 130' INT TERM HUP
cd "$WORK"
log "apt-get source --download-only kubernetes (into $WORK)"
apt-get source --download-only kubernetes >&2
orig=$(ls ./kubernetes_*.orig.tar.* 2>/dev/null | head -n 1)
if [[ -z $orig ]] || ! grep -Eq "$DEBIAN_VERSION_PATTERN" <<<"$orig"; then
    log "expected Debian's kubernetes 1.20.5+really1.20.2 source, got: ${orig:-nothing}"
    exit 1
fi
mkdir src
tar -xf "$orig" -C src --strip-components=1
cd src

# 4. The trap: the vendored reflect2 v1.0.1 crashes under Go >= 1.18 ("fatal error: fault" in
# UnsafeMapType.UnsafeIterate on the first real request). Use Debian's 1.0.2 instead.
rm -rf vendor/github.com/modern-go/reflect2
mkdir -p vendor/github.com/modern-go/reflect2
cp "$REFLECT2_SRC"/*.go "$REFLECT2_SRC"/*.s vendor/github.com/modern-go/reflect2/

# 5. Build as Debian's rules do: GOPATH layout, no cgo, version stamped.
mkdir -p .go/src/k8s.io
ln -s ../../.. .go/src/k8s.io/kubernetes
cat >"$WORK/version.env" <<EOF
KUBE_GIT_COMMIT=''
KUBE_GIT_TREE_STATE='archive'
KUBE_GIT_VERSION='v$KUBE_VERSION'
KUBE_GIT_MAJOR='1'
KUBE_GIT_MINOR='20'
EOF
mkdir -p "$WORK/home"
log "building ${BINARIES[*]} (first run only; several minutes)"
started=$(date +%s)
# In its own process group, waited for in the background, so that a signal stops the whole build
# at once (the EXIT trap then removes the scratch directory).
setsid env GOPATH="$PWD/.go" CGO_ENABLED=0 HOME="$WORK/home" GOCACHE="$WORK/home/gocache" \
    GO111MODULE=off KUBE_GIT_VERSION_FILE="$WORK/version.env" \
    make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >&2 &
build_pid=$!
trap 'kill -TERM -- "-$build_pid" 2>/dev/null; wait "$build_pid"; exit 130' INT TERM HUP
wait "$build_pid"
trap 'exit 130' INT TERM HUP
log "built in $(($(date +%s) - started)) s"

# 6. Into the cache with one rename, so a reader sees both binaries or none.
staging=$(mktemp -d "$CACHE_ROOT/.staging.XXXXXX")
chmod 0755 "$staging"
for b in "${BINARIES[@]}"; do
    install -m 0755 "_output/local/bin/linux/$(go env GOARCH)/$b" "$staging/$b"
done
"$staging/kube-apiserver" --version >&2
rm -rf "$DEST"
mv "$staging" "$DEST"
echo "$DEST"
