import Imaging
import TensorKit

/// Chooses an exit threshold on validation data: the one that stops images soonest while keeping
/// accuracy within `maxAccuracyDrop` of the fixed budget's.
///
/// One fixed-budget run with the per-step trace gives every image's potentials after every step;
/// since an image that stops early has exactly the potentials its trace shows at that step
/// (`SpikingEngine` carries the state exactly), every candidate threshold is evaluated on the
/// trace without simulating again. Candidates are the statistics the images reach.
public enum ExitCalibration {
    public struct Candidate: Sendable {
        public var threshold: Double
        public var accuracy: Double
        public var meanTimesteps: Double
    }

    public struct Report: Sendable {
        /// The chosen policy, or nil when none beats the fixed budget on steps within the drop.
        public var policy: ExitPolicy?
        public var budget: Int
        public var fixedAccuracy: Double
        public var chosen: Candidate?
        /// A spread of candidates (accuracy against mean steps), for the record.
        public var frontier: [Candidate]
    }

    public static func calibrate(
        _ model: Model, on data: ImageSet, budget: Int, rule: ExitPolicy.Rule, minTimesteps: Int = 1, interval: Int = 1,
        maxAccuracyDrop: Double = 0.001, batchSize: Int = 100, seed: UInt64 = 0
    ) throws -> Report {
        var engine = try SpikingEngine(model: model)
        var rng = SeededGenerator(seed: 0)
        var traces: [[[Float]]] = []
        var labels: [Int] = []
        for lo in stride(from: 0, to: data.count, by: batchSize) {
            let indices = Array(lo..<min(data.count, lo + batchSize))
            let (x, y) = data.batch(indices, generator: &rng)
            // Same seeds as Evaluator.evaluateSNN, so the calibration sees the evaluation's inputs.
            let r = engine.run(x, options: .init(timesteps: budget, seeds: indices.map { UInt64($0) &+ seed &* 1_000_003 }, trace: true))
            traces += r.trace ?? []
            labels += y
        }
        let n = Double(max(1, labels.count))
        func decision(_ v: [Float]) -> Int? {
            guard let top = v.max(), v.filter({ $0 == top }).count == 1 else { return nil }
            return v.firstIndex(of: top)
        }
        let fixedCorrect = zip(traces, labels).filter { decision($0.last ?? []) == $1 }.count
        let fixedAccuracy = Double(fixedCorrect) / n
        // Every image's statistic at each test step; candidates are their quantiles.
        let probe = ExitPolicy(rule: rule, threshold: 0, minTimesteps: minTimesteps, interval: interval)
        let testSteps = Array(stride(from: minTimesteps, to: budget, by: max(1, interval)))
        var values: [Double] = []
        for trace in traces {
            for step in testSteps { if let s = probe.statistic(trace[step - 1], steps: step) { values.append(s) } }
        }
        values.sort()
        var thresholds: [Double] = []
        if !values.isEmpty {
            for q in 0...400 { thresholds.append(values[min(values.count - 1, q * (values.count - 1) / 400)]) }
        }
        func evaluate(_ threshold: Double) -> Candidate {
            let policy = ExitPolicy(rule: rule, threshold: threshold, minTimesteps: minTimesteps, interval: interval)
            var correct = 0, steps = 0
            for (trace, label) in zip(traces, labels) {
                let used = testSteps.first { policy.isSettled(trace[$0 - 1], steps: $0) } ?? budget
                steps += used
                if decision(trace[used - 1]) == label { correct += 1 }
            }
            return Candidate(threshold: threshold, accuracy: Double(correct) / n, meanTimesteps: Double(steps) / n)
        }
        let candidates = Array(Set(thresholds)).sorted().map(evaluate)
        let allowed = candidates.filter { $0.accuracy >= fixedAccuracy - maxAccuracyDrop - 1e-12 }
        let chosen = allowed.min { ($0.meanTimesteps, $0.accuracy) < ($1.meanTimesteps, $1.accuracy) }
        let policy = chosen.flatMap { c in
            c.meanTimesteps < Double(budget) ? ExitPolicy(rule: rule, threshold: c.threshold, minTimesteps: minTimesteps, interval: interval) : nil
        }
        let step = max(1, candidates.count / 12)
        let frontier = stride(from: 0, to: candidates.count, by: step).map { candidates[$0] }
        return Report(policy: policy, budget: budget, fixedAccuracy: fixedAccuracy, chosen: chosen, frontier: frontier)
    }
}
