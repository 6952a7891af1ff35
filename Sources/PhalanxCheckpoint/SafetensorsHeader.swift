import Foundation

extension SafetensorsFile {
    /// Parses and validates a header against a data section of `dataBytes` bytes.
    static func parse(_ header: Data, dataBytes: Int, path: String) throws -> ([Entry], [String: String]) {
        func malformed(_ message: String) -> CheckpointError { CheckpointError(.malformed, path: path, message) }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: header) } catch { throw malformed("the header is not valid JSON") }
        guard let dictionary = object as? [String: Any] else { throw malformed("the header is not a JSON object") }
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for (name, value) in dictionary {
            if name == "__metadata__" {
                guard let strings = value as? [String: String] else { throw malformed("__metadata__ must map strings to strings") }
                metadata = strings
                continue
            }
            guard let fields = value as? [String: Any] else { throw malformed("entry '\(name)' is not an object") }
            guard let typeName = fields["dtype"] as? String else { throw malformed("entry '\(name)' has no dtype") }
            guard let dtype = SafetensorsDType(rawValue: typeName) else {
                throw CheckpointError(.unsupportedType, path: path, "entry '\(name)' has dtype \(typeName); F32, F64, F16 and BF16 are read")
            }
            guard let shapeValues = fields["shape"] as? [Any], let offsetValues = fields["data_offsets"] as? [Any], offsetValues.count == 2 else {
                throw malformed("entry '\(name)' needs a shape and two data_offsets")
            }
            let shape = try shapeValues.map { value -> Int in
                guard let number = value as? NSNumber, number.doubleValue >= 0, number.doubleValue < 9e15, number.doubleValue == number.doubleValue.rounded() else {
                    throw malformed("entry '\(name)': shape \(shapeValues) must be non-negative integers")
                }
                return number.intValue
            }
            let offsets = try offsetValues.map { value -> Int in
                guard let number = value as? NSNumber, number.doubleValue >= 0, number.doubleValue <= Double(dataBytes), number.doubleValue == number.doubleValue.rounded() else {
                    throw malformed("entry '\(name)': data_offsets \(offsetValues) fall outside the \(dataBytes)-byte data section")
                }
                return number.intValue
            }
            guard offsets[0] <= offsets[1] else { throw malformed("entry '\(name)': data_offsets \(offsets) are reversed") }
            var elements = 1
            for extent in shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: extent)
                guard !overflow else { throw malformed("entry '\(name)': shape \(shape) overflows") }
                elements = product
            }
            let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, bytes == offsets[1] - offsets[0] else {
                throw malformed("entry '\(name)': shape \(shape) of \(typeName) needs \(bytes) bytes, data_offsets give \(offsets[1] - offsets[0])")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, byteRange: offsets[0]..<offsets[1]))
        }
        entries.sort { ($0.byteRange.lowerBound, $0.byteRange.upperBound, $0.name) < ($1.byteRange.lowerBound, $1.byteRange.upperBound, $1.name) }
        var end = 0
        for entry in entries {
            if entry.byteRange.isEmpty {
                // An empty tensor may sit anywhere already covered, but not beyond: that would hide a hole.
                guard entry.byteRange.lowerBound <= end else {
                    throw malformed("bytes \(end)..<\(entry.byteRange.lowerBound) before '\(entry.name)' belong to no tensor")
                }
                continue
            }
            guard entry.byteRange.lowerBound >= end else { throw malformed("entry '\(entry.name)' overlaps the previous one") }
            guard entry.byteRange.lowerBound == end else {
                throw malformed("bytes \(end)..<\(entry.byteRange.lowerBound) before '\(entry.name)' belong to no tensor")
            }
            end = entry.byteRange.upperBound
        }
        guard end == dataBytes else { throw malformed("the data section has \(dataBytes) bytes, the entries cover \(end)") }
        return (entries, metadata)
    }
}
