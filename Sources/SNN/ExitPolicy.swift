import Foundation

/// When an image stops before its time-step budget (adaptive time steps).
///
/// After `minTimesteps` steps, and then every `interval` steps, the rule is tested on the softmax
/// of the image's mean output potential per step, p = softmax(V_t / t): the image stops once the
/// rule holds. An image whose largest potential is shared by several classes never stops early.
/// The threshold is calibrated per model on validation data (`ExitCalibration`) and stored in
/// `model.json`; a request may override it.
public struct ExitPolicy: Codable, Sendable, Hashable {
    public enum Rule: String, Codable, Sendable, CaseIterable, Hashable {
        /// Stop when max p ≥ threshold.
        case confidence
        /// Stop when the two largest p differ by at least threshold.
        case margin
        /// Stop when the entropy of p, over ln(classes), is at most threshold.
        case entropy
    }

    public var rule: Rule
    public var threshold: Double
    /// Steps every image runs before the rule is first tested. Default 1.
    public var minTimesteps: Int
    /// Steps between tests. Default 1.
    public var interval: Int

    enum CodingKeys: String, CodingKey {
        case rule, threshold, interval
        case minTimesteps = "min_timesteps"
    }

    public init(rule: Rule, threshold: Double, minTimesteps: Int = 1, interval: Int = 1) {
        self.rule = rule
        self.threshold = threshold
        self.minTimesteps = minTimesteps
        self.interval = interval
    }

    /// The rule's statistic for output potentials summed over `steps` steps: max p, the top-two
    /// margin, or the normalised entropy; nil when the top potential is shared (nothing decided).
    public func statistic(_ potentials: [Float], steps: Int) -> Double? {
        guard let top = potentials.max(), potentials.lazy.filter({ $0 == top }).count == 1 else { return nil }
        let scale = 1 / Double(max(1, steps))
        let logits = potentials.map { Double($0) * scale }
        let m = logits.max() ?? 0
        let e = logits.map { Foundation.exp($0 - m) }
        let z = e.reduce(0, +)
        let p = e.map { $0 / z }
        switch rule {
        case .confidence:
            return p.max()
        case .margin:
            let sorted = p.sorted(by: >)
            return sorted[0] - (sorted.count > 1 ? sorted[1] : 0)
        case .entropy:
            let h = -p.reduce(0) { $0 + ($1 > 0 ? $1 * Foundation.log($1) : 0) }
            return h / Foundation.log(Double(max(2, p.count)))
        }
    }

    /// Whether the rule holds for `statistic`.
    public func holds(_ statistic: Double) -> Bool {
        rule == .entropy ? statistic <= threshold : statistic >= threshold
    }

    /// Whether the image stops after `steps` steps with these summed potentials.
    public func isSettled(_ potentials: [Float], steps: Int) -> Bool {
        guard steps >= minTimesteps, (steps - minTimesteps) % max(1, interval) == 0 else { return false }
        return statistic(potentials, steps: steps).map(holds) ?? false
    }
}

/// Why an image stopped.
public enum ExitReason: String, Codable, Sendable, CaseIterable {
    /// Its prediction was settled by the exit policy before the budget.
    case settled
    /// It ran its whole budget.
    case budget
}
