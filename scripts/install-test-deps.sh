#!/usr/bin/env bash
# Install the programs the integration tests run: the real registry (docker-registry), skopeo, containerd
# (ctr), umoci, zstd, htpasswd (apache2-utils), openssl and setfattr/getfattr (attr; the layer applier
# sets xattrs with setfattr), systemd-analyze (systemd: verifies deploy/systemd's units), runc and a
# static busybox (busybox-static: the images the Kubernetes-node test runs pods from), the shells and man
# tools the completion and man page tests drive (zsh, fish, man-db, groff), tmux (the terminal the progress
# test draws pulls in); and for
# containerd's own conformance suites (test/conformance/go), Go and the Go sources of containerd 1.6 and
# gotest.tools, built offline in GOPATH mode. Idempotent and quiet: apt-get runs only when something is
# missing.
set -euo pipefail

# package → a binary (or, for Go sources, a file) it provides
declare -A WANT=(
  [docker-registry]=/usr/bin/docker-registry
  [skopeo]=skopeo
  [containerd]=ctr
  [umoci]=umoci
  [zstd]=zstd
  [apache2-utils]=htpasswd
  [openssl]=openssl
  [attr]=setfattr
  [systemd]=systemd-analyze
  [runc]=/usr/sbin/runc
  [busybox-static]=/bin/busybox
  [tmux]=tmux
  [dnsmasq]=/usr/sbin/dnsmasq
  [golang-go]=/usr/bin/go
  [zsh]=zsh
  [fish]=fish
  [man-db]=/usr/bin/man
  [groff]=/usr/bin/groff
  [golang-github-containerd-containerd-dev]=/usr/share/gocode/src/github.com/containerd/containerd/content/testsuite/testsuite.go
  [golang-github-gotestyourself-gotest.tools-dev]=/usr/share/gocode/src/gotest.tools/assert/assert.go
)

missing=()
for pkg in "${!WANT[@]}"; do
  bin="${WANT[$pkg]}"
  if [[ "$bin" == /* ]]; then
    [[ -e "$bin" ]] || missing+=("$pkg")
  else
    command -v "$bin" >/dev/null 2>&1 || missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "install-test-deps: missing ${missing[*]} and not root (no sudo); install them first" >&2
    exit 1
  fi
fi

echo "install-test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq >/dev/null
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
