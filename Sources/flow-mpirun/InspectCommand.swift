import ArgumentParser
import FlowCore
import FlowDistributed
import Foundation

/// `flow-mpirun inspect`: what a checkpoint holds.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show a checkpoint's configuration, parameter count and metadata.")
    @OptionGroup var modelOption: ModelOption
    @Flag(help: "Print one JSON object.") var json = false

    struct Result: Codable {
        var file: String
        var model: FlowConfiguration
        var parameters: Int
        var training: TrainingConfiguration?
        var step: Int?
        /// Epochs completed (the checkpoint may lie inside the next one).
        var epochsCompleted: Int?
        /// Steps per epoch, when the data can be loaded to count them.
        var stepsPerEpoch: Int?
        var optimizerStep: Int?
        var bestValidationNLL: Double?
        var bestEpoch: Int?
        var metadata: [String: String]
        enum CodingKeys: String, CodingKey {
            case file, model, parameters, training, step, epochsCompleted = "epochs_completed", stepsPerEpoch = "steps_per_epoch",
                 optimizerStep = "optimizer_step",
                 bestValidationNLL = "best_validation_nll", bestEpoch = "best_epoch", metadata
        }
    }

    mutating func run() throws {
        // Under mpirun every rank takes part in the set-up agreement (a rank whose flags failed to parse waits in it),
        // and rank 0 alone prints.
        let ctx = try RunContext()
        let option = modelOption
        let (path, checkpoint) = ctx.setUp { () throws -> (String, Checkpoint) in
            let path = try option.path
            return (path, try Checkpoint.load(path: path))
        }
        defer { ctx.finish() }
        guard ctx.isRoot else { return }
        let s = checkpoint.state
        var epoch: Int?, perEpoch: Int?
        if let s, let t = checkpoint.training, let spec = checkpoint.metadata["data"].flatMap({ try? JSONDecoder().decode(DataSpec.self, from: Data($0.utf8)) }),
           let rows = try? spec.loadRows().rows.rows {
            perEpoch = max(1, t.stepsPerEpoch(rows: rows))
            epoch = s.step / perEpoch!
        }
        let r = Result(file: path, model: checkpoint.model.configuration, parameters: checkpoint.model.network.layout.parameterCount,
                       training: checkpoint.training, step: s?.step, epochsCompleted: epoch, stepsPerEpoch: perEpoch,
                       optimizerStep: s?.optimizerStep,
                       bestValidationNLL: s?.bestValidationNLL, bestEpoch: s?.bestEpoch, metadata: checkpoint.metadata)
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try e.encode(r), as: UTF8.self))
            return
        }
        print("checkpoint: \(path)")
        print("model: \(Checkpoint.describe(r.model)); \(r.parameters) parameters")
        if let image = r.model.image {
            print(Self.levels(image, layout: checkpoint.model.network.layout))
        } else {
            print("masks: \(r.model.masks().map { $0.map(String.init).joined() }.joined(separator: " "))")
        }
        if r.model.contextFeatures > 0 {
            let cn = checkpoint.model.contextNormalizer
            let how = r.model.contextClasses.map { "one-hot class of \($0) classes (sample --class k), not normalised" }
                ?? "standardised by mean \(cn.mean) and std \(cn.std)"
            let path = r.model.image == nil ? "every coupling's s and t read [b⊙x, c]"
                : "every coupling's ResNet adds W_c·c (a learned [channels, K] weight) after its first convolution"
            print("context: K = \(r.model.contextFeatures) values per row, the last columns of each input row; \(how); \(path)")
        }
        if let t = r.training {
            print("training: \(t.epochs) epochs, batch \(t.batchSize), lr \(t.learningRate), l2 \(t.l2), seed \(t.seed)\(t.reproducible ? ", exact mode" : "")")
        }
        if let s {
            var at = ""
            if let epoch, let perEpoch {
                let within = s.step - epoch * perEpoch
                at = " (\(epoch) epoch\(epoch == 1 ? "" : "s") done" + (within > 0 ? ", \(within) of \(perEpoch) steps of epoch \(epoch + 1))" : ")")
            }
            print("position: step \(s.step)\(at), \(s.optimizerStep) Adam updates")
        }
        if let best = r.bestValidationNLL { print("best validation NLL: \(best) nats at epoch \(r.bestEpoch ?? 0)") }
        for (k, v) in r.metadata.sorted(by: { $0.key < $1.key }) { print("metadata \(k): \(v)") }
    }

    /// An image flow level by level: each stage's couplings with their shape, mask and parameters, the squeezes and
    /// the factor-outs.
    static func levels(_ image: ImageFlowArchitecture, layout: ParameterLayout) -> String {
        func parameters(_ prefix: String) -> Int {
            layout.tensors.filter { $0.isTrainable && $0.name.hasPrefix(prefix + ".") }.reduce(0) { $0 + $1.count }
        }
        var lines = ["architecture (data → latent; each coupling's s/t: ResNet \(image.channels) channels × \(image.resBlocks) blocks):"]
        for step in image.steps {
            switch step {
            case let .coupling(name, shape, mask):
                let norm = image.actNorm ? "actnorm" : image.batchNorm ? "batchnorm" : nil
                lines.append("  \(name)  \(shape)  \(mask)  \(parameters(name) - (norm.map { parameters(name + "." + $0) } ?? 0)) parameters"
                             + (image.actNorm ? " + ActNorm \(2 * shape.channels)" : "")
                             + (image.batchNorm ? " + batch norm \(2 * shape.channels) (+ running mean and variance)" : ""))
            case let .squeeze(name, shape):
                lines.append("  \(name)  \(shape) → \(shape.squeezed)")
            case let .factorOut(level, shape, factored):
                lines.append("  levels.\(level) factor-out: \(factored) of \(shape.channels) channels (\(factored * shape.pixels) values) to the latent, \(shape.keeping(channels: shape.channels - factored)) go on")
            case .actNorm, .batchNorm:
                break
            }
        }
        return lines.joined(separator: "\n")
    }
}
