// A small HTTP server for --metrics: GET (or HEAD) /metrics answers with the text a callback
// renders (the sink's Prometheus exposition); any other path is 404, any other method 405.
//
// The port is open to anyone who can reach it, so nobody can hold it up or keep the sink from
// exiting (docs/security.md): one thread serves every connection from a poll loop, never
// blocking on a client; each connection has kDeadline from its accept to read its request and
// receive the whole response, whatever it sends meanwhile; a request head is at most 8 KiB and
// 64 lines (http_request.hpp); at most kMaxConnections are open at once, and a new one beyond
// that closes the oldest; every response closes its connection (HTTP/1.1 "Connection: close").
// The destructor closes whatever is open without waiting for anyone.
//
// Lifetime: the constructor binds (throws StartupError when it cannot) and serves from then on;
// the destructor stops and joins the thread (quiet, noexcept). `render` is called on that
// thread, one call at a time, and never after the destructor has returned.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "options.hpp"

namespace taskpipe {

class MetricsServer {
  public:
    static constexpr auto kDeadline = std::chrono::seconds(5);
    static constexpr std::size_t kMaxConnections = 64;

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
