import ArgumentParser

struct SpikeServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spikeserve",
        abstract: "Serve, train, convert and fine-tune spiking neural networks (hybrid ANN→SNN conversion + STDB).",
        subcommands: [
            SystemCommand.self, TrainCommand.self, ConvertCommand.self, EvaluateCommand.self, ClassifyCommand.self, FinetuneCommand.self,
            ServeCommand.self, BenchCommand.self, CalibrateExitCommand.self, ImportCommand.self,
        ]
    )
}
