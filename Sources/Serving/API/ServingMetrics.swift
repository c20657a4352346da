import CoreMetrics
import Foundation
import Prometheus

/// The server's metrics, recorded through swift-metrics and exposed by swift-prometheus's registry
/// in the Prometheus text format at `GET /metrics`.
public final class ServingMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Inference latencies are milliseconds, not the factory's default of 5 ms and up.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(20),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
        ]
        factory.valueHistogramBuckets = [
            "spikeserve_batch_size": [1, 2, 4, 8, 16, 32, 64],
            "spikeserve_timesteps": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
            "spikeserve_timesteps_used": [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, 256, 512],
        ]
        self.factory = factory
    }

    public func request(route: String, method: String, status: Int, seconds: Double) {
        factory.makeCounter(label: "spikeserve_requests_total", dimensions: [("route", route), ("method", method), ("status", String(status))])
            .increment(by: 1)
        factory.makeTimer(label: "spikeserve_request_duration_seconds", dimensions: [("route", route)])
            .recordNanoseconds(Int64(seconds * 1e9))
    }

    public func queueWait(seconds: Double) {
        factory.makeTimer(label: "spikeserve_queue_wait_seconds", dimensions: []).recordNanoseconds(Int64(seconds * 1e9))
    }

    public func batch(model: String, version: Int, size: Int, timesteps: Int, spikes: Int, computeSeconds: Double) {
        factory.makeRecorder(label: "spikeserve_batch_size", dimensions: [], aggregate: true).record(Int64(size))
        factory.makeRecorder(label: "spikeserve_timesteps", dimensions: [], aggregate: true).record(Int64(timesteps))
        factory.makeCounter(label: "spikeserve_spikes_total", dimensions: [("model", model)]).increment(by: Int64(spikes))
        factory.makeCounter(label: "spikeserve_images_total", dimensions: [("model", model), ("version", String(version))])
            .increment(by: Int64(size))
        factory.makeTimer(label: "spikeserve_batch_compute_seconds", dimensions: [("model", model)])
            .recordNanoseconds(Int64(computeSeconds * 1e9))
    }

    /// Steps one image ran, and why it stopped (`settled` early by adaptive steps, or at its `budget`).
    public func timestepsUsed(model: String, steps: Int, exit: String) {
        factory.makeRecorder(label: "spikeserve_timesteps_used", dimensions: [("model", model)], aggregate: true).record(Int64(steps))
        factory.makeCounter(label: "spikeserve_exits_total", dimensions: [("model", model), ("reason", exit)]).increment(by: 1)
    }

    /// Images dropped before or while being computed: their deadline passed, or their client left.
    public func dropped(model: String, reason: String) {
        factory.makeCounter(label: "spikeserve_dropped_images_total", dimensions: [("model", model), ("reason", reason)]).increment(by: 1)
    }

    /// 1 for each loaded version, 0 once unloaded.
    public func versionLoaded(model: String, version: Int, loaded: Bool, isDefault: Bool) {
        factory.makeMeter(label: "spikeserve_model_version_loaded", dimensions: [("model", model), ("version", String(version))])
            .set(loaded ? 1.0 : 0.0)
        factory.makeMeter(label: "spikeserve_model_version_default", dimensions: [("model", model), ("version", String(version))])
            .set(isDefault ? 1.0 : 0.0)
    }

    public func exposition() -> [UInt8] { registry.emitToBuffer() }
}
