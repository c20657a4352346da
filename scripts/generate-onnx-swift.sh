#!/usr/bin/env bash
# Regenerates Sources/ModelImport/ONNX/onnx.pb.swift, the ONNX message types, with swift-protobuf's
# code generator (run once per ONNX schema update; the output is committed because building the
# generator takes minutes). Needs protoc (apt-get install protobuf-compiler) and the onnx Python
# package for its onnx.proto (pip install onnx).
# The schema's comments are stripped first: the generated file carries the messages only.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
proto=$(python3 -c "import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), 'onnx.proto'))")
sed -e 's@//.*$@@' "$proto" | grep -v '^\s*$' > "$work/onnx.proto"
git clone -q --branch 1.39.0 https://github.com/apple/swift-protobuf "$work/swift-protobuf"
swift build -c release --package-path "$work/swift-protobuf" --product protoc-gen-swift
protoc --plugin=protoc-gen-swift="$work/swift-protobuf/.build/release/protoc-gen-swift" \
  --swift_out=Visibility=Internal:"$work" -I "$work" "$work/onnx.proto"
cp "$work/onnx.pb.swift" Sources/ModelImport/ONNX/onnx.pb.swift
echo "wrote Sources/ModelImport/ONNX/onnx.pb.swift from $proto"
