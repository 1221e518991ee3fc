import Foundation
import Testing
@testable import FlowCore

/// The independent Float64 reference dumps in `Fixtures/realnvp_d{2,5}.json` (copied from
/// shared/reference; see its README for the conventions).
struct ReferenceModel {
    let json: [String: Any]
    let configuration: FlowConfiguration
    let name: String

    init(_ name: String) throws {
        self.name = name
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"))
        json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let masks = try #require(json["masks"] as? [[Double]]).map { $0.map { Int($0) } }
        configuration = FlowConfiguration(
            dim: try #require(json["dim"] as? Int), couplings: masks.count,
            hidden: try #require(json["hidden"] as? Int), hiddenLayers: try #require(json["hidden_layers"] as? Int),
            customMasks: masks)
    }

    static func flatten(_ v: Any) -> [Double] {
        if let a = v as? [Any] { return a.flatMap(flatten) }
        if let d = v as? Double { return [d] }
        if let n = v as? NSNumber { return [n.doubleValue] }
        return []
    }

    func array(_ key: String) throws -> [Double] { ReferenceModel.flatten(try #require(json[key])) }
    func matrix<S: FlowScalar>(_ key: String, as: S.Type = S.self) throws -> Matrix<S> {
        let rows = try #require(json[key] as? [[Double]])
        return Matrix(rows: rows.count, columns: rows[0].count, values: rows.flatMap { $0.map { S($0) } })
    }
    func scalar(_ key: String) throws -> Double { try #require(json[key] as? Double) }

    /// The named tensors of a parameter dictionary (`params`, `grad_of_loss_with_l2`, `adam.params_after`).
    func tensors(_ dict: [String: Any]) -> [String: [Double]] {
        dict.mapValues { ReferenceModel.flatten($0) }
    }

    /// The model with the reference parameters, in scalar type S, read from the JSON dump.
    func model<S: FlowScalar>(_: S.Type) throws -> RealNVP<S> {
        let params = tensors(try #require(json["params"] as? [String: Any]))
        let network = try FlowNetwork<S>(configuration)
        var model = RealNVP(network: network, parameters: Array(repeating: 0, count: network.layout.storageCount),
                            normalizer: Normalizer(mean: try #require(params["normalizer.mean"]).map { S($0) },
                                                   std: try #require(params["normalizer.std"]).map { S($0) }))
        for slot in network.layout.tensors {
            let v = try #require(params[slot.name], "reference lacks \(slot.name)")
            #expect(v.count == slot.count)
            model.setTensor(slot.name, v.map { S($0) })
        }
        for k in 0..<configuration.couplings {
            let m = try #require(params["couplings.\(k).mask"])
            #expect(m.map { Int($0) } == configuration.masks()[k])
        }
        return model
    }
}

/// |a − b| ≤ atol + rtol·|b|, element-wise; records a failure naming the first offending element.
func expectClose(_ a: [Double], _ b: [Double], rtol: Double, atol: Double = 0, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "\(what): \(a.count) values, expected \(b.count)", sourceLocation: sourceLocation)
    for i in 0..<min(a.count, b.count) {
        let tol = atol + rtol * abs(b[i])
        if !(abs(a[i] - b[i]) <= tol) {
            Issue.record("\(what)[\(i)] = \(a[i]), expected \(b[i]) (tolerance \(tol))", sourceLocation: sourceLocation)
            return
        }
    }
}
