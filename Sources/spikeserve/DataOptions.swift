import ArgumentParser
import Foundation
import Imaging
import SNN

/// Options shared by the commands that read an ImageFolder data set.
struct DataOptions: ParsableArguments {
    @Option(help: "ImageFolder directory (one subfolder per class).")
    var data: String

    @Option(help: "Fraction of the data held out for validation (a seeded split).")
    var validationSplit: Double = 0.1

    @Option(help: "Seed of the train/validation split.")
    var splitSeed: UInt64 = 0

    func folder() throws -> ImageFolder { try ImageFolder(root: data) }

    func validate() throws {
        try OptionRange.check(validationSplit, 0.0...0.9, "--validation-split")
    }
}

func loadSet(_ folder: ImageFolder, spec: InputSpec, what: String) throws -> ImageSet {
    let start = Date()
    let set = try ImageSet.load(folder, spec: spec)
    stderrLine(String(format: "loaded %d %@ images in %.1f s", set.count, what, Date().timeIntervalSince(start)))
    return set
}

func stderrLine(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// The command line that produced an artefact, for provenance.
var invocation: String {
    (["spikeserve"] + CommandLine.arguments.dropFirst()).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
}

func printJSON(_ object: Any) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    print(String(decoding: data, as: UTF8.self))
}
