import Foundation

/// Surrogate derivatives ∂o/∂u for the spike function o = [u > θ], whose true derivative is zero
/// almost everywhere.
public enum Surrogate: Sendable, Equatable, Codable {
    /// STDB (Rathi et al. 2020): ∂o/∂u = α·exp(−β·Δt), Δt = steps since the neuron last spiked.
    /// Recent spikers get large gradients, long-silent neurons small ones.
    ///
    /// `silentAge` is the Δt a neuron that has not spiked yet starts from. The reference
    /// implementation uses 1000, which makes such neurons' gradient α·e^(−10) ≈ 0: at the small T
    /// fine-tuning aims for, most neurons have not spiked yet and learning stalls (measured: no
    /// progress at T = 3). Counting from the start of the simulation (`silentAge` = 1, the default
    /// here) treats the simulation start as the last reset, so silent neurons learn too.
    case stdb(alpha: Float, beta: Float, silentAge: Float = 1)
    /// Piecewise linear (the reference code's default): ∂o/∂u = α·max(0, 1 − |u/θ − 1|), with α = 0.3.
    case linear(alpha: Float)

    public static let `default` = Surrogate.stdb(alpha: 0.3, beta: 0.01)

    /// The reference implementation's `silentAge`.
    public static let referenceSilentAge: Float = 1000

    public var name: String {
        switch self {
        case .stdb: "stdb"
        case .linear: "linear"
        }
    }
}
