import Imaging
import TensorKit

/// Accuracy and cost measurements over a data set.
public enum Evaluator {
    public struct SNNReport: Sendable {
        public var accuracy: Double
        public var imagesPerSecond: Double
        public var spikeRates: [Double]
        public var synapticOpsPerImage: Double
        /// Images whose output potentials decided nothing (counted as wrong).
        public var undecided: Int
        /// Mean steps per image (the budget unless an exit policy stopped images early).
        public var meanTimestepsUsed: Double
        /// Images per number of steps used.
        public var timestepsHistogram: [Int: Int]
        /// The predicted class of every image in data order; nil where undecided.
        public var predictions: [Int?]
    }

    public static func evaluateSNN(
        _ model: Model, on data: ImageSet, timesteps: Int, batchSize: Int = 100,
        lagged: Bool = false, seed: UInt64 = 0, exit: ExitPolicy? = nil
    ) throws -> SNNReport {
        var engine = try SpikingEngine(model: model)
        var rng = SeededGenerator(seed: 0)
        var correct = 0, undecided = 0
        var layerSpikes: [Double] = []
        var layerNeurons: [Int] = []
        var ops = 0.0
        var histogram: [Int: Int] = [:]
        var predictions: [Int?] = []
        let start = nowSeconds()
        for lo in stride(from: 0, to: data.count, by: batchSize) {
            let indices = Array(lo..<min(data.count, lo + batchSize))
            let (x, labels) = data.batch(indices, generator: &rng)
            let r = engine.run(
                x,
                options: .init(
                    timesteps: timesteps, seeds: indices.map { UInt64($0) &+ seed &* 1_000_003 },
                    lagged: lagged, exit: exit))
            for used in r.timestepsUsed { histogram[used, default: 0] += 1 }
            let decisions = r.decisions
            predictions += decisions
            correct += zip(decisions, labels).filter { $0 == $1 }.count
            undecided += decisions.filter { $0 == nil }.count
            if layerSpikes.isEmpty { layerSpikes = [Double](repeating: 0, count: r.layerSpikes.count) }
            for (i, s) in r.layerSpikes.enumerated() { layerSpikes[i] += Double(s) }
            layerNeurons = r.layerNeurons
            ops += Double(r.synapticOps.reduce(0, +))
        }
        let seconds = nowSeconds() - start
        let n = Double(max(1, data.count))
        let imageSteps = Double(histogram.reduce(0) { $0 + $1.key * $1.value })
        let rates = zip(layerSpikes, layerNeurons).map { $0 / (Double($1) * max(1, imageSteps)) }
        return SNNReport(
            accuracy: Double(correct) / n, imagesPerSecond: n / seconds, spikeRates: rates, synapticOpsPerImage: ops / n,
            undecided: undecided, meanTimestepsUsed: imageSteps / n, timestepsHistogram: histogram,
            predictions: predictions)
    }

    public static func evaluateANN(_ model: Model, on data: ImageSet, batchSize: Int = 100) throws(ModelError) -> (
        accuracy: Double, imagesPerSecond: Double, predictions: [Int]
    ) {
        var trainer = try ANNTrainer(model: model, configuration: .init())
        let start = nowSeconds()
        let predicted = trainer.predictions(data, batchSize: batchSize)
        let correct = zip(predicted, data.labels).filter { $0 == $1 }.count
        return (Double(correct) / Double(max(1, data.count)), Double(data.count) / (nowSeconds() - start), predicted)
    }
}
