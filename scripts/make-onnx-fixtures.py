#!/usr/bin/env python3
"""Writes Tests/ModelImportTests/Fixtures/: small ONNX models and the outputs onnxruntime computes
for them, plus models the importer must refuse (run once; the output is committed).

Requires: pip install torch onnx onnxruntime onnxscript pillow

Accepted models (NAME.onnx, NAME.expected.json with the uint8 input images and the logits
onnxruntime gives for image / 255):
  torch-vgg        torch.onnx.export (TorchScript exporter, opset 11): bias-free convolutions,
                   average pooling, dropout, x.view(x.size(0), -1) (Shape/Gather/Unsqueeze/Concat/
                   Reshape), initializers listed as graph inputs; also torch-vgg.png (its first
                   input image) for the command-line check
  torch-resnet     TorchScript exporter, opset 13, batch norm kept as nodes: residual blocks with
                   identity and 1x1-convolution shortcuts, global average pooling, torch.flatten,
                   a linear layer with bias (Gemm)
  torch-meanpool   TorchScript exporter, opset 17: global average pooling as x.mean((2, 3))
  torch-dynamo     torch.onnx.export(dynamo=True), opset 18: convolutions with biases, batch norm,
                   average pooling, flatten, linear layers
  onnx-matmul-fp16 onnx helper, opset 21: Flatten, MatMul + Add with float16 initializers (raw
                   data, cast to float32 as mixed-precision exports do), Gemm with transB = 0,
                   alpha and beta, float_data lists
  onnx-bn-constant onnx helper, opset 12: Conv with bias as float_data, BatchNormalization,
                   AveragePool, Dropout with a ratio input, Identity, Constant shape -> Reshape
  onnx-external    onnx helper, opset 17: weights in an external data file (onnx-external.data),
                   flatten as Shape -> Gather -> Squeeze -> Unsqueeze -> Concat -> Reshape

Refused models (refuse-NAME.onnx; refusals.json maps each to a phrase its error must contain).
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

OUT = sys.argv[1] if len(sys.argv) > 1 else "Tests/ModelImportTests/Fixtures"
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(7)
torch.manual_seed(7)


def images(c, h, w, n=2):
    return rng.integers(0, 256, size=(n, c, h, w), dtype=np.uint8)


def expect(name, u8):
    """Runs onnxruntime on image / 255 and writes NAME.expected.json."""
    path = f"{OUT}/{name}.onnx"
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: (u8.astype(np.float32) / 255)}
    logits = session.run(None, feed)[0]
    with open(f"{OUT}/{name}.expected.json", "w") as f:
        json.dump({"input_shape": list(u8.shape[1:]), "images": u8.reshape(len(u8), -1).tolist(),
                   "logits": logits.tolist()}, f)
    print(f"{name}: {os.path.getsize(path)} bytes, logits {logits.shape}")


# ---------------------------------------------------------------- torch exports


class VGG(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(), nn.Dropout(0.2), nn.AvgPool2d(2),
            nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.ReLU(), nn.AvgPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(8 * 4 * 4, 16, bias=False), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 10, bias=False))

    def forward(self, x):
        x = self.features(x)
        return self.classifier(x.view(x.size(0), -1))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = Block(8, 8, 1)
        self.layer2 = Block(8, 12, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(12, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
            nn.Linear(8 * 2 * 2, 12), nn.ReLU(), nn.Linear(12, 10))

    def forward(self, x):
        return self.net(x)


def randomise_batch_norm(model):
    # Non-trivial running statistics, so that folding them is tested.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)


vgg = VGG().eval()
torch.onnx.export(vgg, (torch.rand(1, 3, 16, 16),), f"{OUT}/torch-vgg.onnx", dynamo=False, opset_version=11,
                  input_names=["image"], output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                  keep_initializers_as_inputs=True)
u8 = images(3, 16, 16)
expect("torch-vgg", u8)
Image.fromarray(u8[0].transpose(1, 2, 0)).save(f"{OUT}/torch-vgg.png")

resnet = ResNet()
randomise_batch_norm(resnet)
resnet.eval()
torch.onnx.export(resnet, (torch.rand(1, 3, 8, 8),), f"{OUT}/torch-resnet.onnx", dynamo=False, opset_version=13,
                  input_names=["image"], output_names=["logits"], do_constant_folding=False,
                  training=torch.onnx.TrainingMode.PRESERVE)
expect("torch-resnet", images(3, 8, 8, n=1))

class MeanPool(nn.Module):
    """Global average pooling written as x.mean((2, 3)) (ReduceMean)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.fc = nn.Linear(6, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


torch.onnx.export(MeanPool().eval(), (torch.rand(1, 3, 6, 6),), f"{OUT}/torch-meanpool.onnx", dynamo=False, opset_version=17,
                  input_names=["image"], output_names=["logits"])
expect("torch-meanpool", images(3, 6, 6, n=1))

small = Small()
randomise_batch_norm(small)
small.eval()
torch.onnx.export(small, (torch.rand(1, 3, 8, 8),), f"{OUT}/torch-dynamo.onnx", dynamo=True, opset_version=18, external_data=False)
expect("torch-dynamo", images(3, 8, 8, n=1))

# ---------------------------------------------------------------- onnx helper models


def value(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def save(name, nodes, initializers, inputs, opset, output=("logits", ["N", 10]), **kw):
    graph = helper.make_graph(nodes, name, inputs, [value(*output)], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="spikeserve-fixtures")
    model.ir_version = min(model.ir_version, 8) if opset < 18 else model.ir_version
    onnx.save(model, f"{OUT}/{name}.onnx", **kw)
    return model


def typed(name, array):
    """A float32 initializer stored as a float_data list rather than raw bytes."""
    return helper.make_tensor(name, TensorProto.FLOAT, array.shape, array.flatten().tolist(), raw=False)


def w(*shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# Flatten -> MatMul (fp16) + Add (fp16) -> Relu -> Gemm(transB = 0, alpha, beta), opset 21.
save("onnx-matmul-fp16", [
    helper.make_node("Flatten", ["image"], ["f"], axis=1),
    helper.make_node("Cast", ["fc1.weight"], ["w32"], to=TensorProto.FLOAT),
    helper.make_node("Cast", ["fc1.bias"], ["b32"], to=TensorProto.FLOAT),
    helper.make_node("MatMul", ["f", "w32"], ["m"]),
    helper.make_node("Add", ["m", "b32"], ["a"]),
    helper.make_node("Relu", ["a"], ["r"]),
    helper.make_node("Gemm", ["r", "fc2.weight", "fc2.bias"], ["logits"], transB=0, alpha=0.5, beta=2.0),
], [numpy_helper.from_array(w(48, 20).astype(np.float16), "fc1.weight"),
    numpy_helper.from_array(w(20).astype(np.float16), "fc1.bias"),
    typed("fc2.weight", w(20, 10)), typed("fc2.bias", w(10))],
    [value("image", ["N", 3, 4, 4])], 21)
expect("onnx-matmul-fp16", images(3, 4, 4))

# Conv (float_data) -> BatchNormalization -> Relu -> AveragePool -> Dropout(ratio input) ->
# Identity -> Constant [0, -1] -> Reshape -> Gemm(transB = 1), opset 12.
save("onnx-bn-constant", [
    helper.make_node("Conv", ["image", "conv.weight", "conv.bias"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
    helper.make_node("BatchNormalization", ["c", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["b"], epsilon=1e-3),
    helper.make_node("Relu", ["b"], ["r"]),
    helper.make_node("AveragePool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
    helper.make_node("Dropout", ["p", "ratio"], ["d"]),
    helper.make_node("Identity", ["d"], ["i"]),
    helper.make_node("Constant", [], ["shape"], value=numpy_helper.from_array(np.array([0, -1], dtype=np.int64))),
    helper.make_node("Reshape", ["i", "shape"], ["flat"]),
    helper.make_node("Gemm", ["flat", "fc.weight"], ["logits"], transB=1),
], [typed("conv.weight", w(5, 3, 3, 3)), typed("conv.bias", w(5)),
    numpy_helper.from_array(np.linspace(0.5, 1.5, 5, dtype=np.float32), "bn.scale"),
    numpy_helper.from_array(np.linspace(-0.2, 0.2, 5, dtype=np.float32), "bn.bias"),
    numpy_helper.from_array(np.linspace(-0.1, 0.3, 5, dtype=np.float32), "bn.mean"),
    numpy_helper.from_array(np.linspace(0.6, 1.8, 5, dtype=np.float32), "bn.var"),
    numpy_helper.from_array(np.array(0.25, dtype=np.float32), "ratio"),
    numpy_helper.from_array(w(10, 5 * 4 * 4), "fc.weight")],
    [value("image", ["N", 3, 8, 8])], 12)
expect("onnx-bn-constant", images(3, 8, 8))

# External data, opset 17.
save("onnx-external", [
    helper.make_node("Conv", ["image", "conv.weight"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["c"], ["r"]),
    helper.make_node("GlobalAveragePool", ["r"], ["g"]),
    # The batch dimension through Squeeze/Unsqueeze with axes as inputs (opset 13+).
    helper.make_node("Shape", ["g"], ["s"]),
    helper.make_node("Gather", ["s", "zero"], ["n1"], axis=0),
    helper.make_node("Squeeze", ["n1", "axes"], ["n"]),
    helper.make_node("Unsqueeze", ["n", "axes"], ["n2"]),
    helper.make_node("Concat", ["n2", "minus1"], ["target"], axis=0),
    helper.make_node("Reshape", ["g", "target"], ["f"]),
    helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["logits"], transB=1),
], [numpy_helper.from_array(w(6, 3, 3, 3), "conv.weight"), numpy_helper.from_array(w(10, 6), "fc.weight"),
    numpy_helper.from_array(w(10), "fc.bias"), numpy_helper.from_array(np.array([0], np.int64), "zero"),
    numpy_helper.from_array(np.array([0], np.int64), "axes"), numpy_helper.from_array(np.array([-1], np.int64), "minus1")],
    [value("image", ["N", 3, 6, 6])], 17,
    save_as_external_data=True, all_tensors_to_one_file=True, location="onnx-external.data", size_threshold=64)
expect("onnx-external", images(3, 6, 6))

# ---------------------------------------------------------------- refusals

refusals = {}


def refuse(name, phrase, nodes, initializers=(), opset=13, inputs=None, output=("logits", ["N", 10])):
    save(f"refuse-{name}", nodes, list(initializers), inputs or [value("image", ["N", 3, 8, 8])], opset, output=output)
    refusals[f"refuse-{name}"] = phrase


conv = numpy_helper.from_array(w(4, 3, 3, 3), "conv.weight")
fc = numpy_helper.from_array(w(10, 4 * 4 * 4), "fc.weight")
tail = [helper.make_node("Flatten", ["p"], ["f"]), helper.make_node("Gemm", ["f", "fc.weight"], ["logits"], transB=1)]
refuse("maxpool", "max pooling cannot be converted", [
    helper.make_node("Conv", ["image", "conv.weight"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["c"], ["r"]), helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2])] + tail,
    [conv, fc])
refuse("sigmoid", "operator not supported", [
    helper.make_node("Conv", ["image", "conv.weight"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    helper.make_node("Sigmoid", ["c"], ["r"]), helper.make_node("AveragePool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2])] + tail,
    [conv, fc])
refuse("group", "grouped convolutions", [
    helper.make_node("Conv", ["image", "gconv.weight"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=3)],
    [numpy_helper.from_array(w(3, 1, 3, 3), "gconv.weight")], output=("c", ["N", 3, 8, 8]))
refuse("pads", "asymmetric padding", [
    helper.make_node("Conv", ["image", "conv.weight"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 0, 0])], [conv],
    output=("c", ["N", 4, 7, 7]))
refuse("kernel", "non-square kernels", [
    helper.make_node("Conv", ["image", "k.weight"], ["c"], kernel_shape=[3, 1], pads=[1, 0, 1, 0])],
    [numpy_helper.from_array(w(4, 3, 3, 1), "k.weight")], output=("c", ["N", 4, 8, 8]))
refuse("dilation", "dilated convolutions", [
    helper.make_node("Conv", ["image", "conv.weight"], ["c"], kernel_shape=[3, 3], pads=[2, 2, 2, 2], dilations=[2, 2])], [conv],
    output=("c", ["N", 4, 8, 8]))
refuse("bn-after-pool", "batch normalization is supported only right after", [
    helper.make_node("AveragePool", ["image"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
    helper.make_node("BatchNormalization", ["p", "s", "b", "m", "v"], ["n"])],
    [numpy_helper.from_array(np.ones(3, np.float32), k) for k in "sbmv"], output=("n", ["N", 3, 4, 4]))
refuse("add-constant", "adding a constant is supported only as the bias", [
    helper.make_node("Relu", ["image"], ["r"]), helper.make_node("Add", ["r", "k"], ["a"])],
    [numpy_helper.from_array(np.ones(1, np.float32), "k")], output=("a", ["N", 3, 8, 8]))
refuse("reshape", "only a flatten to [batch, features]", [
    helper.make_node("Reshape", ["image", "s"], ["r"])],
    [numpy_helper.from_array(np.array([0, 3, -1], np.int64), "s")], output=("r", ["N", 3, 64]))
refuse("int8", "data type 3 is not supported", [
    helper.make_node("Conv", ["image", "q.weight"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
    [helper.make_tensor("q.weight", TensorProto.INT8, [4, 3, 3, 3], np.ones(108, np.int8).tolist())], output=("c", ["N", 4, 8, 8]))
refuse("softmax", "export the logits without the final softmax", [
    helper.make_node("Flatten", ["image"], ["f"]), helper.make_node("Gemm", ["f", "s.weight"], ["z"], transB=1),
    helper.make_node("Softmax", ["z"], ["logits"], axis=1)], [numpy_helper.from_array(w(10, 192), "s.weight")])
refuse("normalise-in-graph", "give the normalisation as --mean and --std", [
    helper.make_node("Sub", ["image", "m"], ["n"]), helper.make_node("Relu", ["n"], ["r"])],
    [numpy_helper.from_array(np.full((1, 3, 1, 1), 0.5, np.float32), "m")], output=("r", ["N", 3, 8, 8]))
refuse("opset9", "opset 9 is not supported", [helper.make_node("Relu", ["image"], ["r"])], opset=9, output=("r", ["N", 3, 8, 8]))
refuse("two-inputs", "expects one image input", [helper.make_node("Add", ["image", "other"], ["a"])],
       inputs=[value("image", ["N", 3, 8, 8]), value("other", ["N", 3, 8, 8])], output=("a", ["N", 3, 8, 8]))

# Hostile files: each would crash or exhaust a careless reader.
refuse("pool-stride0", "non-positive strides", [
    helper.make_node("AveragePool", ["image"], ["p"], kernel_shape=[2, 2], strides=[0, 0])], output=("p", ["N", 3, 4, 4]))
refuse("huge-pads", "outside 0...kernel", [
    helper.make_node("Conv", ["image", "conv.weight"], ["c"], kernel_shape=[3, 3], pads=[1 << 40] * 4)], [conv],
    output=("c", ["N", 4, 8, 8]))
refuse("huge-input", "larger than 4096", [helper.make_node("Relu", ["image"], ["r"])],
       inputs=[value("image", ["N", 1, 1 << 30, 1 << 30])], output=("r", ["N", 1, 1, 1]))
refuse("redefined", "redefines 'r1'", [
    helper.make_node("Relu", ["image"], ["r1"]), helper.make_node("Relu", ["r1"], ["m"]),
    helper.make_node("Identity", ["image"], ["r1"]), helper.make_node("Add", ["m", "r1"], ["a"])], output=("a", ["N", 3, 8, 8]))
refuse("cast-overflow", "unsupported data type", [
    helper.make_node("Shape", ["image"], ["s"]), helper.make_node("Cast", ["s"], ["t"], to=1 << 40),
    helper.make_node("Reshape", ["image", "t"], ["r"])], output=("r", ["N", 192]))
explode = [helper.make_node("Shape", ["image"], ["s0"])]
for k in range(40):
    explode.append(helper.make_node("Concat", [f"s{k}", f"s{k}"], [f"s{k + 1}"], axis=0))
explode.append(helper.make_node("Reshape", ["image", "s40"], ["r"]))
refuse("concat-explosion", "more than 8 dimensions", explode, output=("r", ["N", 192]))
refuse("bias-broadcast", "does not broadcast per output channel", [
    helper.make_node("Conv", ["image", "conv.weight"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    helper.make_node("Add", ["c", "b"], ["a"])], [conv, numpy_helper.from_array(np.ones(4, np.float32), "b")],
    output=("a", ["N", 4, 8, 8]))

# External data whose location leaves the model's directory.
escape = helper.make_graph([helper.make_node("Conv", ["image", "conv.weight"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
                           "escape", [value("image", ["N", 3, 8, 8])], [value("c", ["N", 4, 8, 8])])
t = TensorProto(name="conv.weight", data_type=TensorProto.FLOAT, dims=[4, 3, 3, 3], data_location=TensorProto.EXTERNAL)
t.external_data.add(key="location", value="../outside.bin")
escape.initializer.append(t)
onnx.save(helper.make_model(escape, opset_imports=[helper.make_opsetid("", 13)]), f"{OUT}/refuse-external-escape.onnx")
refusals["refuse-external-escape"] = "leaves the model's directory"

with open(f"{OUT}/refuse-garbage.onnx", "wb") as f:
    f.write(bytes(rng.integers(0, 256, 300, dtype=np.uint8)))
refusals["refuse-garbage"] = "not an ONNX model"

with open(f"{OUT}/refusals.json", "w") as f:
    json.dump(refusals, f, indent=1, sort_keys=True)

print("wrote", OUT)
