extension HTTPServer.Reply {
    /// The same reply with one more header on whatever response it ends in.
    func adding(_ name: String, _ value: String) -> HTTPServer.Reply {
        @Sendable func add(_ response: HTTPResponse) -> HTTPResponse {
            var response = response
            response.headers.append((name, value))
            return response
        }
        switch self {
        case .response(let response):
            return .response(add(response))
        case .retry(let deadline, let fallback):
            return .retry(deadline: deadline, fallback: add(fallback))
        case .deferred(let work):
            return .deferred { add(work()) }
        case .pending(let deadline, let fallback, let start):
            return .pending(deadline: deadline, fallback: add(fallback)) { complete in
                start { next in complete(next.adding(name, value)) }
            }
        case .awaiting(let deadline, let fallback, let check):
            return .awaiting(deadline: deadline, fallback: add(fallback)) { check().map(add) }
        case .stream(let head, let stream):
            return .stream(head: add(head), stream)
        }
    }
}
