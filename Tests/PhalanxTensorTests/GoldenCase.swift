import Foundation
import PhalanxTensor

/// One case of `golden_tensor.json`, written by `Tests/Golden/make_golden.py` with NumPy.
struct GoldenCase: Decodable {
    struct Array: Decodable {
        let shape: [Int]
        let data: [Double]
        func tensor() throws -> Tensor { try Tensor(shape: shape, scalars: data.map(Float.init)) }
    }
    let name: String
    let op: String
    let inputs: [String: Array]
    let params: [String: Double]
    let outputs: [String: Array]

    static func load(resource: String) throws -> [GoldenCase] {
        struct File: Decodable { let cases: [GoldenCase] }
        guard let url = Bundle.module.url(forResource: resource, withExtension: "json") else {
            throw CocoaError(.fileNoSuchFile)
        }
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases
    }

    func input(_ key: String) throws -> Tensor {
        guard let value = inputs[key] else { throw CocoaError(.coderValueNotFound) }
        return try value.tensor()
    }
    func param(_ key: String) -> Double { params[key] ?? 0 }
}

/// Asserts `actual` matches `expected` element by element within `atol + rtol·|expected|`.
/// Returns a description of the first mismatch, or nil.
func mismatch(_ actual: [Float], _ expected: [Double], atol: Double, rtol: Double) -> String? {
    guard actual.count == expected.count else { return "count \(actual.count) != \(expected.count)" }
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        let tolerance = atol + rtol * abs(e)
        if !(abs(Double(a) - e) <= tolerance) { return "element \(i): \(a) vs \(e) (tolerance \(tolerance))" }
    }
    return nil
}
