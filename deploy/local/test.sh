#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit and integration tests (each
# integration test starts its own tansu broker on a free port), and doc tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/local/install.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/spr/target}"
# The local brokers take plain connections: a broker login set in this shell
# (SPR_KAFKA_*, deploy/README.md) is for another broker, so it is not passed on.
unset $(compgen -e | grep '^SPR_KAFKA_') 2>/dev/null || true

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> doc tests"
cargo test --doc --workspace --quiet
echo "==> cargo nextest (unit and integration tests; each integration test starts its own broker)"
cargo nextest run --workspace --no-fail-fast
