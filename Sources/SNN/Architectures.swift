import Imaging

/// The built-in architectures, described as layer lists (what `model.json` stores).
/// Convolutions and linear layers have no bias (the conversion method's assumption), pooling is
/// average pooling, and dropout sits where the reference implementation puts it.
public enum Architectures {
    public static let names = ["mnist-cnn", "cifar-cnn", "cifar-vgg", "vgg5", "vgg9", "vgg11", "vgg16", "resnet20"]

    /// The input each architecture is built for, with the dataset's usual normalisation.
    public static func input(for name: String) -> InputDescription {
        if name == "mnist-cnn" {
            return InputDescription(channels: 1, height: 28, width: 28, mean: [0.1307], std: [0.3081])
        }
        return InputDescription(
            channels: 3, height: 32, width: 32,
            mean: [0.4914, 0.4822, 0.4465], std: [0.2470, 0.2435, 0.2616])
    }

    /// The architecture's layers with `qcfs` activations of `levels` levels in place of every ReLU
    /// (named `act.K`), for training an ANN that converts to an SNN with few steps.
    public static func layers(for name: String, classes: Int = 10, batchNorm: Bool = false, qcfsLevels: Int?) throws(ModelError)
        -> [LayerSpec]
    {
        let plain = try layers(for: name, classes: classes, batchNorm: batchNorm)
        guard let qcfsLevels else { return plain }
        var k = 0
        func swap(_ layers: [LayerSpec]) -> [LayerSpec] {
            layers.map { layer in
                switch layer.type {
                case .relu:
                    defer { k += 1 }
                    return .qcfs("act.\(k)", levels: qcfsLevels)
                case .residual:
                    var l = layer
                    l.body = swap(layer.body ?? [])
                    l.shortcut = swap(layer.shortcut ?? [])
                    return l
                default:
                    return layer
                }
            }
        }
        return swap(plain)
    }

    public static func layers(for name: String, classes: Int = 10, batchNorm: Bool = false) throws(ModelError) -> [LayerSpec] {
        switch name {
        case "mnist-cnn":
            return [
                .conv("features.0", 1, 32), .relu, .dropout(0.2), .avgPool(),
                .conv("features.4", 32, 64), .relu, .dropout(0.2), .avgPool(),
                .flatten,
                .linear("classifier.0", 64 * 7 * 7, 256), .relu, .dropout(0.5),
                .linear("classifier.3", 256, classes),
            ]
        case "cifar-cnn":
            return vgg(
                [32, 32, "M", 64, 64, "M", 128, 128, "M"], hidden: [256], flat: 128 * 4 * 4,
                classes: classes, batchNorm: batchNorm, convDropout: 0.2)
        case "cifar-vgg":
            // cifar-cnn at 1.5× width: sized so one core trains an epoch of CIFAR-10 in minutes.
            return vgg(
                [48, 48, "M", 96, 96, "M", 192, 192, "M"], hidden: [256], flat: 192 * 4 * 4,
                classes: classes, batchNorm: batchNorm, convDropout: 0.1)
        case "vgg5":
            return vgg([64, "M", 128, 128, "M"], hidden: [4096, 4096], flat: 128 * 8 * 8, classes: classes, batchNorm: batchNorm)
        case "vgg9":
            return vgg(
                [64, "M", 128, 256, "M", 256, 512, "M", 512, "M", 512], hidden: [4096, 4096], flat: 512 * 2 * 2,
                classes: classes, batchNorm: batchNorm)
        case "vgg11":
            return vgg(
                [64, "M", 128, 256, "M", 512, 512, "M", 512, "M", 512, 512], hidden: [4096, 4096],
                flat: 512 * 2 * 2, classes: classes, batchNorm: batchNorm)
        case "vgg16":
            return vgg(
                [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
                hidden: [4096, 4096], flat: 512 * 2 * 2, classes: classes, batchNorm: batchNorm)
        case "resnet20":
            return resnet20(classes: classes, batchNorm: batchNorm)
        default:
            throw ModelError("unknown architecture '\(name)'; known: \(names.joined(separator: ", "))")
        }
    }

    /// VGG-style stacks with the reference implementation's configurations (`cfg` in
    /// self_models/vgg_spiking.py; "M" is its 'A', an average pool): conv3×3,
    /// ReLU, dropout between convolutions, average pooling for "M", then a classifier of linear
    /// layers with dropout. Names follow PyTorch's `features.N` / `classifier.N` indexing.
    static func vgg(
        _ cfg: [Any], hidden: [Int], flat: Int, classes: Int, batchNorm: Bool,
        convDropout: Float = 0.2
    ) -> [LayerSpec] {
        var layers: [LayerSpec] = []
        var channels = 3
        for item in cfg {
            if let width = item as? Int {
                layers.append(.conv("features.\(layers.count)", channels, width))
                if batchNorm { layers.append(.batchNorm("features.\(layers.count)", width)) }
                layers.append(.relu)
                layers.append(.dropout(convDropout))
                channels = width
            } else {
                // Pooling follows a dropout in this layout: drop that dropout, pool the activations.
                if layers.last?.type == .dropout { layers.removeLast() }
                layers.append(.avgPool())
            }
        }
        if layers.last?.type == .dropout { layers.removeLast() }
        layers.append(.flatten)
        var classifier: [LayerSpec] = []
        var width = flat
        for h in hidden {
            classifier.append(.linear("classifier.\(classifier.count)", width, h))
            classifier.append(.relu)
            classifier.append(.dropout(0.5))
            width = h
        }
        classifier.append(.linear("classifier.\(classifier.count)", width, classes))
        return layers + classifier
    }

    /// ResNet20 of the reference implementation: three 64-wide convs and a pool, then basic blocks
    /// in four stages (64, 128, 256, 512; strides 1, 2, 2, 2), 1×1 conv shortcuts where the shape
    /// changes. Each block's residual is added to its second conv's current before the neuron.
    static func resnet20(classes: Int, batchNorm: Bool) -> [LayerSpec] {
        var layers: [LayerSpec] = []
        var channels = 3
        // PyTorch names: pre_process is one Sequential (conv, ReLU, dropout, …), so its convs are
        // entries 0, 3 and 6; a block's convs are residual.0 and residual.3, its shortcut identity.0.
        for i in 0..<3 {
            layers.append(.conv("pre_process.\(3 * i)", channels, 64))
            if batchNorm { layers.append(.batchNorm("pre_process_bn.\(i)", 64)) }
            layers.append(.relu)
            layers.append(.dropout(0.2))
            channels = 64
        }
        layers.removeLast()
        layers.append(.avgPool())
        let stages: [(Int, Int, Int)] = [(64, 1, 2), (128, 2, 2), (256, 2, 2), (512, 2, 2)]
        for (s, (width, stride, blocks)) in stages.enumerated() {
            for b in 0..<blocks {
                let st = b == 0 ? stride : 1
                let prefix = "layer\(s + 1).\(b)"
                var body: [LayerSpec] = [.conv("\(prefix).residual.0", channels, width, stride: st)]
                if batchNorm { body.append(.batchNorm("\(prefix).bn1", width)) }
                body += [.relu, .dropout(0.2), .conv("\(prefix).residual.3", width, width)]
                if batchNorm { body.append(.batchNorm("\(prefix).bn2", width)) }
                var shortcut: [LayerSpec] = []
                if st != 1 || channels != width {
                    shortcut = [.conv("\(prefix).identity.0", channels, width, kernel: 1, stride: st, padding: 0)]
                    if batchNorm { shortcut.append(.batchNorm("\(prefix).shortcut_bn", width)) }
                }
                layers.append(.residual(body: body, shortcut: shortcut))
                layers.append(.relu)
                channels = width
            }
        }
        // 16×16 after the first pool; strides 2, 2, 2 leave 2×2×512.
        layers.append(.flatten)
        layers.append(.linear("classifier.0", 512 * 2 * 2, classes))
        return layers
    }
}

/// Input geometry and normalisation of a model (`model.json`'s `input`): the image pipeline's
/// `InputSpec`, under the name the model format uses.
public typealias InputDescription = InputSpec
