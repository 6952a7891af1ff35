import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1 server (SwiftNIO) for `/metrics`, `/healthz` and `/readyz`: one event-loop
/// thread, one request per connection, every reply built by `respond`.
public final class MetricsEndpoint: @unchecked Sendable {
    /// Builds the reply to a GET (its future may complete on any event loop).
    public typealias Route = @Sendable (_ request: HTTPRequest, _ eventLoop: EventLoop) -> EventLoopFuture<HTTPReply>

    /// The address it listens on.
    public let host: String
    /// The port it listens on (the one the system chose when asked for 0).
    public let port: Int
    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel

    /// Listens on `host`:`port` (0: any free port).
    /// - Throws: NIO's `IOError` when the address cannot be bound (in use, not local).
    public init(host: String, port: Int, respond: @escaping Route) throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(EndpointHandler(respond: respond))
                }
            }
        do {
            channel = try bootstrap.bind(host: host, port: port).wait()
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        self.host = host
        self.port = channel.localAddress?.port ?? port
    }

    /// The URL of `path` on this endpoint.
    public func url(_ path: String) -> String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(path)" }

    private let closing = NIOLockedValueBox(false)

    /// Stops listening and ends the event loop (call it once the endpoint is no longer needed,
    /// never from a route).
    public func close() {
        guard closing.withLockedValue({ closed in defer { closed = true }; return !closed }) else { return }
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}
