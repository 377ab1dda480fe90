#!/bin/sh
# Builds the libFuzzer targets on the stable toolchain (the coverage
# instrumentation cargo-fuzz uses with `--sanitizer none`, no nightly flags)
# and runs one of them at low priority.
#
#   fuzz/run.sh TARGET [SECONDS]     targets: jwt_claims top_json htgettoken_options condor_config keytab
#
# Findings go to fuzz/artifacts/TARGET, the corpus to fuzz/corpus/TARGET.
set -eu
target=${1:?usage: fuzz/run.sh TARGET [SECONDS]}
secs=${2:-600}
here=$(cd "$(dirname "$0")" && pwd)
triple=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
nice -n 19 cargo build --locked --release --manifest-path "$here/Cargo.toml" --target "$triple" --bin "$target"
mkdir -p "$here/corpus/$target" "$here/artifacts/$target"
exec nice -n 19 "$here/target/$triple/release/$target" \
    -max_total_time="$secs" -max_len=4096 -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="$here/artifacts/$target/" "$here/corpus/$target"
