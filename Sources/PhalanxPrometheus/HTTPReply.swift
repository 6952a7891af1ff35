import NIOHTTP1

/// What a metrics endpoint answers to one request.
public struct HTTPReply: Sendable {
    /// The HTTP status.
    public var status: HTTPResponseStatus
    /// The `Content-Type` header.
    public var contentType: String
    /// The body.
    public var body: String

    /// A reply of `status` with `body` of `contentType`.
    public init(status: HTTPResponseStatus = .ok, contentType: String = "text/plain; charset=utf-8", body: String) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    /// Prometheus' text exposition format, version 0.0.4.
    public static let exposition = "text/plain; version=0.0.4; charset=utf-8"

    /// 404 with the paths that exist.
    static func notFound(_ path: String, known: [String]) -> HTTPReply {
        HTTPReply(status: .notFound, body: "no \(path) here; try \(known.joined(separator: ", "))\n")
    }
}
