import Foundation

/// The JSON forms of etcd's v3 API as its gRPC gateway speaks them (keys and values in base64,
/// 64-bit numbers as strings, fields left out when they hold their default).
enum EtcdWire {
    struct KeyValue: Codable {
        var key: String
        var value: String?
        var create_revision: String?
        var mod_revision: String?
    }

    struct RangeRequest: Codable {
        var key: String
        var range_end: String?
    }

    struct RangeResponse: Codable {
        var kvs: [KeyValue]?
    }

    struct PutRequest: Codable {
        var key: String
        var value: String
        var lease: String?
    }

    struct Compare: Codable {
        var key: String
        /// "MOD" or "CREATE"; the result is EQUAL (the default).
        var target: String
        var mod_revision: String?
        var create_revision: String?
    }

    struct RequestOp: Codable {
        var request_put: PutRequest?
    }

    struct TxnRequest: Codable {
        var compare: [Compare]
        var success: [RequestOp]
        var failure: [RequestOp]
    }

    /// An answer whose content does not matter (only that it came).
    struct Empty: Codable {}

    struct Header: Codable {
        var revision: String?
    }

    struct TxnResponse: Codable {
        var header: Header?
        var succeeded: Bool?
    }

    struct LeaseGrantRequest: Codable {
        var TTL: String
    }

    struct LeaseGrantResponse: Codable {
        var ID: String?
        var error: String?
    }

    struct LeaseRequest: Codable {
        var ID: String
    }

    struct KeepAliveResponse: Codable {
        struct Result: Codable {
            var TTL: String?
        }
        var result: Result?
    }

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// The end of the range of every key starting with `prefix` (its last byte plus one).
    static func prefixEnd(_ prefix: String) -> String {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return base64(bytes)
            }
            bytes.removeLast()
        }
        return base64([0])
    }
}
