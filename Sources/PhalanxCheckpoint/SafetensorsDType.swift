/// The element types a safetensors file can declare that Phalanx reads (all converted to Float).
public enum SafetensorsDType: String, Sendable, CaseIterable {
    /// 32-bit IEEE float (what Phalanx writes).
    case f32 = "F32"
    /// 64-bit IEEE float.
    case f64 = "F64"
    /// 16-bit IEEE float.
    case f16 = "F16"
    /// bfloat16 (the top half of a float32).
    case bf16 = "BF16"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f32: return 4
        case .f64: return 8
        case .f16, .bf16: return 2
        }
    }

    /// Converts `count` little-endian elements at `source` into `destination`.
    func convert(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) {
        switch self {
        case .f32:
            for i in 0..<count { destination[i] = Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .f64:
            for i in 0..<count { destination[i] = Float(Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
        case .f16:
            for i in 0..<count { destination[i] = Float(Float16(bitPattern: UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))) }
        case .bf16:
            for i in 0..<count {
                let bits = UInt32(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16
                destination[i] = Float(bitPattern: bits)
            }
        }
    }
}
