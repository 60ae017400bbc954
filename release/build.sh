#!/usr/bin/env bash
# Builds the portable release archive:
#
#   release/build.sh            # → dist/apim-profiles-<version>-x86_64-linux-gnu.tar.gz (+ .sha256)
#
# The binary is linked against glibc 2.28 (RHEL 8) with cargo-zigbuild, the
# linker being zig from PyPI (`ziglang`), both installed by this script into
# target/release-tools/ (only once). The build fails when the binary needs a
# glibc symbol newer than 2.28 (read with `objdump -T`). The archive holds the
# binary, shell completions, man pages, the README and docs/, the Ansible collection
# tarball (built from ansible/galaxy.yml when the repository has one) and a
# SHA256SUMS of its contents.
#
# Environment: GLIBC (default 2.28), DIST (default dist/), TOOLS (default
# target/release-tools), ANSIBLE_VENV (a venv that has ansible-galaxy).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

glibc=${GLIBC:-2.28}
arch=x86_64
triple=$arch-unknown-linux-gnu
tools=${TOOLS:-$root/target/release-tools}
dist=${DIST:-$root/dist}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
name=apim-profiles-$version-$arch-linux-gnu

need() { command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is missing" >&2; echo "hint: $2" >&2; exit 1; }; }
need cargo "install the Rust toolchain (rustup)"
need python3 "install Python 3 (zig comes from PyPI's ziglang package)"
need objdump "apt-get install binutils"
need sha256sum "apt-get install coreutils"

# --- tools: zig (PyPI) and cargo-zigbuild (crates.io), kept in $tools -------
mkdir -p "$tools"
if [ ! -x "$tools/venv/bin/python3" ] || ! "$tools/venv/bin/python3" -m ziglang version >/dev/null 2>&1; then
  echo "installing zig (PyPI ziglang) into $tools/venv" >&2
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install -q ziglang
fi
if [ ! -x "$tools/bin/cargo-zigbuild" ]; then
  echo "installing cargo-zigbuild into $tools" >&2
  cargo install --locked cargo-zigbuild --root "$tools"
fi
# cargo-zigbuild runs `python3 -m ziglang` when there is no `zig` on PATH.
export PATH="$tools/venv/bin:$tools/bin:$PATH"

# --- the binary ---------------------------------------------------------------
cargo zigbuild --release --locked --target "$triple.$glibc" --bin apim-profiles
bin=$root/target/$triple/release/apim-profiles

# Every versioned glibc symbol the binary imports; the newest must be <= $glibc.
versions=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV)
oldest=$(echo "$versions" | head -1)
newest=$(echo "$versions" | tail -1)
if [ "$(printf '%s\n%s\n' "$newest" "$glibc" | sort -V | tail -1)" != "$glibc" ]; then
  echo "error: the binary needs glibc $newest, newer than the target $glibc" >&2
  objdump -T "$bin" | grep "GLIBC_$newest" >&2
  exit 1
fi
echo "glibc symbol versions needed: oldest GLIBC_$oldest, newest GLIBC_$newest (target $glibc)" >&2

# --- the archive's tree ----------------------------------------------------------
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
top=$stage/$name
mkdir -p "$top/bin" "$top/completions" "$top/man/man1"
install -m 0755 "$bin" "$top/bin/apim-profiles"
"$top/bin/apim-profiles" --version >/dev/null # it runs here too
"$top/bin/apim-profiles" completions bash >"$top/completions/apim-profiles.bash"
"$top/bin/apim-profiles" completions zsh >"$top/completions/_apim-profiles"
"$top/bin/apim-profiles" completions fish >"$top/completions/apim-profiles.fish"
"$top/bin/apim-profiles" completions powershell >"$top/completions/_apim-profiles.ps1"
"$top/bin/apim-profiles" man --out "$top/man/man1" >/dev/null
cp README.md "$top/"
cp -r docs "$top/docs"
[ -f LICENSE ] && cp LICENSE "$top/"
cp -r schema "$top/schema"
printf 'glibc: oldest GLIBC_%s, newest GLIBC_%s\n' "$oldest" "$newest" >"$top/GLIBC"

# --- the Ansible collection ------------------------------------------------------
collection="none"
if [ -f ansible/galaxy.yml ]; then
  galaxy=""
  if [ -n "${ANSIBLE_VENV:-}" ] && [ -x "$ANSIBLE_VENV/bin/ansible-galaxy" ]; then
    galaxy=$ANSIBLE_VENV/bin/ansible-galaxy
  elif command -v ansible-galaxy >/dev/null 2>&1; then
    galaxy=ansible-galaxy
  else
    if [ ! -x "$tools/venv/bin/ansible-galaxy" ]; then
      echo "installing ansible-core (PyPI) into $tools/venv for ansible-galaxy" >&2
      "$tools/venv/bin/pip" install -q "ansible-core>=2.15,<2.18"
    fi
    galaxy=$tools/venv/bin/ansible-galaxy
  fi
  mkdir -p "$top/ansible"
  "$galaxy" collection build ansible --output-path "$top/ansible" --force >&2
  collection=$(cd "$top/ansible" && ls ./*.tar.gz | sed 's|^\./||')
else
  echo "note: ansible/galaxy.yml is not in this tree; the archive has no Ansible collection" >&2
fi

(cd "$top" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum >SHA256SUMS)

mkdir -p "$dist"
archive=$dist/$name.tar.gz
# Real modification times, owner root, sorted names: the same tree gives the same listing.
tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner -czf "$archive.tmp" "$name"
mv "$archive.tmp" "$archive"
(cd "$dist" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")

echo "archive: $archive"
echo "checksum: $archive.sha256"
echo "ansible collection: $collection"
echo "glibc: oldest GLIBC_$oldest, newest GLIBC_$newest"
