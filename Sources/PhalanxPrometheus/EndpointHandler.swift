import NIOCore
import NIOHTTP1

/// Answers each HTTP/1 request of one connection with `respond`'s reply, then closes the
/// connection (scrapers open one per scrape; nothing is kept between requests).
final class EndpointHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let respond: MetricsEndpoint.Route
    private var head: HTTPRequestHead?

    init(respond: @escaping MetricsEndpoint.Route) {
        self.respond = respond
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(request):
            head = request
        case .body:
            break
        case .end:
            guard let request = head else { return }
            head = nil
            let path = String(request.uri.split(separator: "?", maxSplits: 1).first ?? "/")
            let reply: EventLoopFuture<HTTPReply> = request.method == .GET || request.method == .HEAD
                ? respond(HTTPRequest(path: path, headers: request.headers), context.eventLoop).hop(to: context.eventLoop)
                : context.eventLoop.makeSucceededFuture(HTTPReply(status: .methodNotAllowed, body: "GET only\n"))
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let headOnly = request.method == .HEAD
            reply.whenComplete { result in
                let (handler, context) = bound.value
                let answer = (try? result.get()) ?? HTTPReply(status: .internalServerError, body: "the reply failed\n")
                handler.write(answer, headOnly: headOnly, version: request.version, context: context)
            }
        }
    }

    private func write(_ reply: HTTPReply, headOnly: Bool, version: HTTPVersion, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: reply.body.utf8.count)
        buffer.writeString(reply.body)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: reply.contentType)
        headers.add(name: "Content-Length", value: "\(buffer.readableBytes)")
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: reply.status, headers: headers))), promise: nil)
        if !headOnly { context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
