import Foundation
import Testing
@testable import FlowCore

/// The project's RealNVP against the independent Float64 reference dumps: forward, log-density, loss,
/// every gradient, three Adam steps, and the inverse.
@Suite("Golden values (shared/reference)")
struct GoldenValueTests {
    static let names = ["realnvp_d2", "realnvp_d5"]

    @Test("z, log-det, log_prob and NLL in Float64", arguments: names)
    func forwardDouble(name: String) throws {
        let ref = try ReferenceModel(name)
        let model = try ref.model(Double.self)
        let x: Matrix<Double> = try ref.matrix("x")
        let (z, logDet) = model.encode(x)
        expectClose(z.values, try ref.matrix("z", as: Double.self).values, rtol: 1e-12, atol: 1e-12, "\(name) z")
        let couplingLogDet = logDet.map { $0 - model.normalizer.logDetJacobian }
        expectClose(couplingLogDet, try ref.array("logdet_couplings"), rtol: 1e-12, atol: 1e-12, "\(name) logdet")
        expectClose(model.logProb(x), try ref.array("log_prob"), rtol: 1e-12, atol: 1e-12, "\(name) log_prob")
        expectClose([model.meanNLL(x)], [try ref.scalar("nll_mean")], rtol: 1e-12, "\(name) nll_mean")
    }

    @Test("z and log_prob in Float32 to 1e-5 relative", arguments: names)
    func forwardFloat(name: String) throws {
        let ref = try ReferenceModel(name)
        let model = try ref.model(Float.self)
        let x: Matrix<Float> = try ref.matrix("x")
        let (z, _) = model.encode(x)
        expectClose(z.values.map(Double.init), try ref.matrix("z", as: Double.self).values, rtol: 1e-5, atol: 1e-5, "\(name) z")
        expectClose(model.logProb(x), try ref.array("log_prob"), rtol: 1e-5, atol: 1e-5, "\(name) log_prob")
    }

    @Test("loss with L2 and every gradient", arguments: names)
    func gradients(name: String) throws {
        let ref = try ReferenceModel(name)
        let l2 = try #require(ref.json["l2"] as? Double)
        let expected = ref.tensors(try #require(ref.json["grad_of_loss_with_l2"] as? [String: Any]))
        for useFloat in [false, true] {
            let result: (loss: Double, grads: [String: [Double]])
            if useFloat {
                let m = try ref.model(Float.self)
                let r = m.lossAndGradient(try ref.matrix("x"), l2: l2)
                result = (r.loss, Dictionary(uniqueKeysWithValues: m.network.layout.tensors.map {
                    ($0.name, r.gradient[$0.offset..<($0.offset + $0.count)].map(Double.init)) }))
            } else {
                let m = try ref.model(Double.self)
                let r = m.lossAndGradient(try ref.matrix("x"), l2: l2)
                result = (r.loss, Dictionary(uniqueKeysWithValues: m.network.layout.tensors.map {
                    ($0.name, Array(r.gradient[$0.offset..<($0.offset + $0.count)])) }))
            }
            let rtol = useFloat ? 1e-4 : 1e-7
            let atol = useFloat ? 1e-5 : 1e-8  // the reference gradients are finite differences, good to ~5e-9
            expectClose([result.loss], [try ref.scalar("loss_with_l2")], rtol: useFloat ? 1e-5 : 1e-12, "\(name) loss")
            #expect(Set(expected.keys) == Set(result.grads.keys))
            for (tensor, g) in expected.sorted(by: { $0.key < $1.key }) {
                expectClose(try #require(result.grads[tensor]), g, rtol: rtol, atol: atol,
                            "\(name) \(useFloat ? "F32" : "F64") d/d \(tensor)")
            }
        }
    }

    @Test("parameters after 3 Adam steps", arguments: names)
    func adam(name: String) throws {
        let ref = try ReferenceModel(name)
        let adam = try #require(ref.json["adam"] as? [String: Any])
        let lr = try #require(adam["lr"] as? Double), steps = try #require(adam["steps"] as? Int)
        let config = AdamConfiguration(beta1: try #require(adam["beta1"] as? Double),
                                       beta2: try #require(adam["beta2"] as? Double),
                                       epsilon: try #require(adam["eps"] as? Double))
        let grads = ref.tensors(try #require(ref.json["grad_of_loss_with_l2"] as? [String: Any]))
        let after = ref.tensors(try #require(adam["params_after"] as? [String: Any]))
        var model = try ref.model(Double.self)
        var g = [Double](repeating: 0, count: model.parameters.count)
        for slot in model.network.layout.tensors { g.replaceSubrange(slot.offset..<(slot.offset + slot.count), with: try #require(grads[slot.name])) }
        let state = AdamState<Double>(count: g.count, configuration: config)
        for _ in 0..<steps {
            model.parameters.withUnsafeMutableBufferPointer { p in
                g.withUnsafeBufferPointer { state.update(parameters: p.baseAddress!, gradient: $0.baseAddress!, lr: lr) }
            }
        }
        #expect(state.step == steps)
        for slot in model.network.layout.tensors {
            expectClose(try #require(model.tensor(slot.name)), try #require(after[slot.name]), rtol: 1e-12, atol: 1e-14, "\(name) \(slot.name) after Adam")
        }
    }

    @Test("inverse of z_query", arguments: names)
    func inverse(name: String) throws {
        let ref = try ReferenceModel(name)
        let expected = try ref.matrix("inverse_of_z_query", as: Double.self).values
        let m64 = try ref.model(Double.self)
        expectClose(m64.decode(try ref.matrix("z_query")).values, expected, rtol: 1e-12, atol: 1e-12, "\(name) F64 inverse")
        let m32 = try ref.model(Float.self)
        expectClose(m32.decode(try ref.matrix("z_query")).values.map(Double.init), expected, rtol: 1e-5, atol: 1e-5, "\(name) F32 inverse")
    }
}
