/// An optimizer updates a list of parameter tensors from their gradients, in order.
/// State (momenta, moments) is kept per parameter index, so the list must keep its order.
public protocol Optimizer: Sendable, Codable {
    var learningRate: Float { get set }
    mutating func step(_ parameters: inout [Tensor], gradients: [Tensor])
}

/// SGD with momentum and L2 weight decay (PyTorch's formulation: decay is added to the gradient,
/// v = μ·v + g, p −= lr·v).
public struct SGD: Optimizer {
    public var learningRate: Float
    public var momentum: Float
    public var weightDecay: Float
    var velocity: [[Float]] = []

    public init(learningRate: Float, momentum: Float = 0.9, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
    }

    public mutating func step(_ parameters: inout [Tensor], gradients: [Tensor]) {
        if velocity.count != parameters.count { velocity = parameters.map { [Float](repeating: 0, count: $0.count) } }
        for p in parameters.indices {
            let g = gradients[p].scalars
            let (lr, mu, wd) = (learningRate, momentum, weightDecay)
            parameters[p].withUnsafeMutablePointer { w in
                velocity[p].withUnsafeMutableBufferPointer { v in
                    for i in 0..<g.count {
                        let d = g[i] + wd * w[i]
                        v[i] = mu * v[i] + d
                        w[i] -= lr * v[i]
                    }
                }
            }
        }
    }
}

/// Adam with optional AMSGrad and L2 weight decay (added to the gradient, as PyTorch's `Adam`).
/// AMSGrad keeps the running maximum of the second moment, so the step size never grows back:
/// the paper's fine-tuning uses it for stability with surrogate gradients.
public struct Adam: Optimizer {
    public var learningRate: Float
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float
    public var amsgrad: Bool
    var t: Int = 0
    var m: [[Float]] = []
    var v: [[Float]] = []
    var vMax: [[Float]] = []

    public init(
        learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
        weightDecay: Float = 0, amsgrad: Bool = false
    ) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.amsgrad = amsgrad
    }

    public mutating func step(_ parameters: inout [Tensor], gradients: [Tensor]) {
        if m.count != parameters.count {
            m = parameters.map { [Float](repeating: 0, count: $0.count) }
            v = m
            vMax = amsgrad ? m : []
        }
        t += 1
        let bc1 = 1 - powf(beta1, Float(t)), bc2 = 1 - powf(beta2, Float(t))
        let (b1, b2, eps, wd, lr, ams) = (beta1, beta2, epsilon, weightDecay, learningRate, amsgrad)
        let stepSize = lr / bc1
        let bc2Root = bc2.squareRoot()
        for p in parameters.indices {
            let g = gradients[p].scalars
            var mp = m[p], vp = v[p]
            var vmp = ams ? vMax[p] : []
            m[p] = []; v[p] = []
            parameters[p].withUnsafeMutablePointer { w in
                for i in 0..<g.count {
                    let d = g[i] + wd * w[i]
                    mp[i] = b1 * mp[i] + (1 - b1) * d
                    vp[i] = b2 * vp[i] + (1 - b2) * d * d
                    var second = vp[i]
                    if ams {
                        if second > vmp[i] { vmp[i] = second }
                        second = vmp[i]
                    }
                    w[i] -= stepSize * mp[i] / (second.squareRoot() / bc2Root + eps)
                }
            }
            m[p] = mp; v[p] = vp
            if ams { vMax[p] = vmp }
        }
    }
}

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// An optimizer's internal state as named flat buffers, for checkpoints (saved as tensors).
public struct OptimizerState: Sendable {
    public var step: Int
    public var buffers: [String: [Float]]
    public init(step: Int, buffers: [String: [Float]]) {
        self.step = step
        self.buffers = buffers
    }
}

extension SGD {
    public var state: OptimizerState {
        get { OptimizerState(step: 0, buffers: Dictionary(uniqueKeysWithValues: velocity.enumerated().map { ("velocity.\($0)", $1) })) }
        set { velocity = (0..<newValue.buffers.count).compactMap { newValue.buffers["velocity.\($0)"] } }
    }
}

extension Adam {
    public var state: OptimizerState {
        get {
            var b: [String: [Float]] = [:]
            for i in m.indices { b["m.\(i)"] = m[i]; b["v.\(i)"] = v[i] }
            for i in vMax.indices { b["vmax.\(i)"] = vMax[i] }
            return OptimizerState(step: t, buffers: b)
        }
        set {
            t = newValue.step
            let n = newValue.buffers.keys.filter { $0.hasPrefix("m.") }.count
            m = (0..<n).compactMap { newValue.buffers["m.\($0)"] }
            v = (0..<n).compactMap { newValue.buffers["v.\($0)"] }
            vMax = amsgrad ? (0..<n).compactMap { newValue.buffers["vmax.\($0)"] } : []
        }
    }
}
