#!/usr/bin/env bash
# Builds the libFuzzer harnesses into fuzz/.bin/<target> (AddressSanitizer + libFuzzer, -O, debug info).
#
#   fuzz/build.sh                 # all targets: safetensors npy csv idx checkpoint
#   fuzz/build.sh csv npy         # only these
#   FUZZ_COVERAGE=1 fuzz/build.sh csv   # fuzz/.bin/csv-coverage, with source-based coverage (see coverage.sh)
#
# safetensors, npy and csv are compiled directly with swiftc against the parser sources they need (one
# module with the harness, so harnesses can use internal API); each takes ~20 s. checkpoint needs all of
# FlowCore: its dependencies (RealModule from swift-numerics: the package's checkout in .build, or resolved,
# the CFlowSupport C kernels, OpenBLAS) are built uninstrumented once into fuzz/.work/, then FlowCore and the
# harness are compiled instrumented (~1-2 min). Never writes to the package's .build folder.
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$FUZZ_DIR/.." && pwd)"
BIN="$FUZZ_DIR/.bin"
WORK="$FUZZ_DIR/.work"
SWIFTC="${SWIFTC:-swiftc}"
CLANG="${CLANG:-$(dirname "$(command -v "$SWIFTC")")/clang}"
[ -x "$CLANG" ] || CLANG=clang
mkdir -p "$BIN" "$WORK"

ALL_TARGETS=(safetensors npy csv idx checkpoint)
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")

IO="$ROOT/Sources/FlowCore/IO"
DATA="$ROOT/Sources/FlowCore/Data"
# The smallest set of FlowCore files the three file parsers (and the writers the round-trip oracles use) need.
PARSER_SOURCES=(
    "$IO/FlowIOError.swift" "$IO/POSIXFile.swift" "$IO/UTF8Validation.swift" "$IO/AtomicFile.swift"
    "$IO/SafeTensorsDType.swift" "$IO/SafeTensorsFile.swift" "$IO/SafeTensorsWriter.swift"
    "$DATA/TabularData.swift" "$DATA/TableShapeCheck.swift" "$DATA/PythonLiteral.swift"
    "$DATA/NPYReader.swift" "$DATA/NPYWriter.swift" "$DATA/CSVReader.swift" "$DATA/CSVWriter.swift"
)
# -sanitize=fuzzer adds coverage instrumentation and links libFuzzer's main; address adds ASan.
# The module is called FlowCore so that messages and symbols read as in the package.
FUZZ_FLAGS=(-O -g -sanitize=fuzzer,address -parse-as-library -swift-version 6 -module-name FlowCore -use-ld=lld)
SUFFIX=""
if [ -n "${FUZZ_COVERAGE:-}" ]; then
    FUZZ_FLAGS+=(-profile-generate -profile-coverage-mapping)
    SUFFIX="-coverage"
fi

harness_file() {
    case "$1" in
        safetensors) echo "$FUZZ_DIR/harnesses/SafeTensorsFuzz.swift" ;;
        npy) echo "$FUZZ_DIR/harnesses/NPYFuzz.swift" ;;
        csv) echo "$FUZZ_DIR/harnesses/CSVFuzz.swift" ;;
        idx) echo "$FUZZ_DIR/harnesses/IDXFuzz.swift" ;;
        checkpoint) echo "$FUZZ_DIR/harnesses/CheckpointFuzz.swift" ;;
        *) echo "unknown fuzz target '$1' (targets: ${ALL_TARGETS[*]})" >&2; exit 2 ;;
    esac
}

# Uninstrumented dependencies of the whole FlowCore module, for the checkpoint target.
build_flowcore_dependencies() {
    local deps="$WORK/deps"
    mkdir -p "$deps/include/CFlowSupport" "$deps/modules"
    local numerics
    # The package's own checkout when it has been built (read only), else a private resolve.
    numerics="$(ls -d "$ROOT"/.build/checkouts/swift-numerics "$WORK"/spm/checkouts/swift-numerics 2>/dev/null | head -n 1 || true)"
    if [ -z "$numerics" ]; then
        echo "== resolving package dependencies into fuzz/.work/spm"
        (cd "$ROOT" && swift package --scratch-path "$WORK/spm" resolve >/dev/null)
        numerics="$WORK/spm/checkouts/swift-numerics"
    fi
    local shims="$numerics/Sources/_NumericsShims/include"
    if [ ! -f "$deps/modules/libRealModule.a" ] || [ "$numerics/Sources/RealModule" -nt "$deps/modules/libRealModule.a" ]; then
        echo "== RealModule (swift-numerics)"
        (cd "$deps" && "$SWIFTC" -O -parse-as-library -swift-version 5 -module-name RealModule \
            -I "$shims" -emit-module -emit-module-path "$deps/modules/RealModule.swiftmodule" \
            -emit-library -static -o "$deps/modules/libRealModule.a" "$numerics"/Sources/RealModule/*.swift)
    fi
    echo "== CFlowSupport"
    cat > "$deps/include/CFlowSupport/module.modulemap" <<MAP
module CFlowSupport {
    header "$ROOT/Sources/CFlowSupport/include/CFlowSupport.h"
    export *
}
MAP
    local objects=()
    for c in "$ROOT"/Sources/CFlowSupport/*.c; do
        local o="$deps/$(basename "$c" .c).o"
        "$CLANG" -O2 -fno-math-errno -fPIC -I "$ROOT/Sources/CFlowSupport/include" -c "$c" -o "$o"
        objects+=("$o")
    done
    rm -f "$deps/libCFlowSupport.a"
    "$(dirname "$CLANG")/llvm-ar" rcs "$deps/libCFlowSupport.a" "${objects[@]}" 2>/dev/null || ar rcs "$deps/libCFlowSupport.a" "${objects[@]}"
    FLOWCORE_FLAGS=(
        -I "$deps/modules" -I "$shims" -I "$deps/include/CFlowSupport" -I "$ROOT/Sources/CBLAS" -I "$ROOT/Sources/CZlib"
        "$deps/modules/libRealModule.a" "$deps/libCFlowSupport.a" $(pkg-config --libs openblas) $(pkg-config --libs zlib) -lm
    )
}

for target in "${TARGETS[@]}"; do
    harness="$(harness_file "$target")"
    start=$(date +%s)
    if [ "$target" = checkpoint ]; then
        build_flowcore_dependencies
        echo "== $target: FlowCore (all sources) + harness"
        mapfile -t flowcore < <(find "$ROOT/Sources/FlowCore" -name '*.swift' | sort)
        (cd "$WORK" && "$SWIFTC" "${FUZZ_FLAGS[@]}" "${FLOWCORE_FLAGS[@]}" \
            "$FUZZ_DIR/harnesses/FuzzSupport.swift" "$harness" "${flowcore[@]}" -o "$BIN/$target$SUFFIX")
    elif [ "$target" = idx ]; then
        # The IDX reader inflates gzip with the system zlib (pkg-config zlib).
        echo "== $target: parser sources + IDXReader + harness"
        (cd "$WORK" && "$SWIFTC" "${FUZZ_FLAGS[@]}" -I "$ROOT/Sources/CZlib" $(pkg-config --libs zlib) \
            "$FUZZ_DIR/harnesses/FuzzSupport.swift" "$harness" "${PARSER_SOURCES[@]}" \
            "$DATA/IDXReader.swift" "$ROOT/Sources/FlowCore/Linear/Matrix.swift" -o "$BIN/$target$SUFFIX")
    else
        echo "== $target: parser sources + harness"
        (cd "$WORK" && "$SWIFTC" "${FUZZ_FLAGS[@]}" \
            "$FUZZ_DIR/harnesses/FuzzSupport.swift" "$harness" "${PARSER_SOURCES[@]}" -o "$BIN/$target$SUFFIX")
    fi
    echo "   built fuzz/.bin/$target$SUFFIX in $(( $(date +%s) - start )) s"
done
