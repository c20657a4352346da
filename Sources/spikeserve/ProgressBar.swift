import Foundation
import SNN

/// A terminal progress bar on standard error, redrawn in place at most ten times a second.
final class ProgressBar: @unchecked Sendable {
    // @unchecked: updated only from the training loop's thread, through its event callback.
    private var lastDraw = 0.0
    private let interactive = isatty(2) != 0
    init() {}

    func update(_ p: TrainingProgress) {
        let now = Date().timeIntervalSince1970
        guard now - lastDraw > (interactive ? 0.1 : 10) || p.step == p.stepsPerEpoch else { return }
        lastDraw = now
        let width = 24
        let filled = Int(Double(width) * Double(p.step) / Double(max(1, p.stepsPerEpoch)))
        let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
        let eta = Int(p.secondsRemaining)
        let line = String(
            format: "epoch %d/%d [%@] %d/%d loss %.4f acc %.2f%% %.0f img/s ETA %d:%02d:%02d",
            p.epoch, p.totalEpochs, bar, p.step, p.stepsPerEpoch, p.loss, 100 * p.accuracy,
            p.imagesPerSecond, eta / 3600, (eta / 60) % 60, eta % 60)
        FileHandle.standardError.write(Data(((interactive ? "\r" : "") + line + (interactive ? "\u{1B}[K" : "\n")).utf8))
    }

    func finishLine(_ text: String) {
        FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + text + "\n").utf8))
    }
}
