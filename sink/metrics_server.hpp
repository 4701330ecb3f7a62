// A small HTTP server for --metrics: GET /metrics answers with the text a callback renders (the
// sink's Prometheus exposition); any other path is 404.
//
// Requests are bounded: a few threads serve them, each connection must send its request within
// a couple of seconds, bodies are capped, and when too many connections wait the server stops
// accepting until some are done, so garbage or slow clients cannot hang or exhaust the sink.
//
// Lifetime: the constructor binds (throws StartupError when it cannot) and serves from then on,
// on threads of its own; the destructor stops and joins them (quiet, noexcept). `render` is
// called on those threads, possibly on two at once, and never after the destructor has returned.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "options.hpp"

namespace taskpipe {

class MetricsServer {
  public:
    MetricsServer(const MetricsAddress& address, std::function<std::string()> render);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    // "http://HOST:PORT/metrics", with the port actually bound.
    const std::string& url() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace taskpipe
