import Foundation
import TensorKit

/// What a training run reports as it goes. The command line draws a progress bar from it; the
/// server turns it into job events.
public enum TrainingEvent: Sendable {
    case batch(TrainingProgress)
    case epochFinished(epoch: Int, trainLoss: Double, trainAccuracy: Double, validationAccuracy: Double?, seconds: Double)
    case message(String)
}

public struct TrainingProgress: Sendable {
    public var epoch: Int
    public var totalEpochs: Int
    public var step: Int
    public var stepsPerEpoch: Int
    public var loss: Double
    public var accuracy: Double
    public var imagesPerSecond: Double
    /// Seconds left for the whole run at the current rate.
    public var secondsRemaining: Double

    public var fraction: Double {
        (Double(epoch - 1) + Double(step) / Double(max(1, stepsPerEpoch))) / Double(max(1, totalEpochs))
    }
}

/// Lets a caller stop a run between batches (a cancelled server job, Ctrl-C).
public protocol CancellationCheck: Sendable {
    var isCancelled: Bool { get }
}

public struct NeverCancelled: CancellationCheck {
    public init() {}
    public var isCancelled: Bool { false }
}

public struct TrainingCancelled: Error, CustomStringConvertible {
    public var epoch: Int
    public init(epoch: Int) { self.epoch = epoch }
    public var description: String { "training cancelled during epoch \(epoch)" }
}

/// Step decay: multiply the learning rate by `factor` at each listed fraction of the run.
public struct StepDecay: Codable, Sendable, Equatable {
    public var milestones: [Double]
    public var factor: Double
    public init(milestones: [Double] = [0.5, 0.75], factor: Double = 0.1) {
        self.milestones = milestones
        self.factor = factor
    }
    public func rate(base: Double, epoch: Int, totalEpochs: Int) -> Double {
        let done = Double(epoch - 1) / Double(max(1, totalEpochs))
        return milestones.filter { done >= $0 - 1e-9 }.reduce(base) { r, _ in r * factor }
    }
}

/// Either optimizer behind one value, so checkpoints can save whichever the run uses.
public enum AnyOptimizer: Sendable {
    case sgd(SGD)
    case adam(Adam)

    public var learningRate: Float {
        get {
            switch self {
            case .sgd(let o): o.learningRate;
            case .adam(let o): o.learningRate
            }
        }
        set {
            switch self {
            case .sgd(var o): o.learningRate = newValue; self = .sgd(o)
            case .adam(var o): o.learningRate = newValue; self = .adam(o)
            }
        }
    }

    public mutating func step(_ parameters: inout [Tensor], gradients: [Tensor]) {
        switch self {
        case .sgd(var o): o.step(&parameters, gradients: gradients); self = .sgd(o)
        case .adam(var o): o.step(&parameters, gradients: gradients); self = .adam(o)
        }
    }

    public var state: OptimizerState {
        get {
            switch self {
            case .sgd(let o): o.state;
            case .adam(let o): o.state
            }
        }
        set {
            switch self {
            case .sgd(var o): o.state = newValue; self = .sgd(o)
            case .adam(var o): o.state = newValue; self = .adam(o)
            }
        }
    }
}

func nowSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

func isoNow() -> String { ISO8601DateFormatter().string(from: Date()) }
