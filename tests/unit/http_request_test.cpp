// The head of an HTTP request as the --metrics server reads it (sink/http_request.hpp).
//
// "The bytes come from anyone who can reach the port, so the head is bounded (kMaxHeadBytes,
// kMaxHeaderLines) and anything malformed ends in a status to answer with." "The server feeds
// what it reads, in pieces of any size."
#include "http_request.hpp"

#include <gtest/gtest.h>

#include <string>

namespace taskpipe {
namespace {

using State = HttpRequestReader::State;

HttpRequestReader read_all(const std::string& bytes) {
    HttpRequestReader reader;
    reader.feed(bytes);
    return reader;
}

// The state after feeding `bytes`; the status when bad, 0 when incomplete, 200 when complete.
int outcome(const std::string& bytes) {
    const HttpRequestReader reader = read_all(bytes);
    switch (reader.state()) {
        case State::incomplete:
            return 0;
        case State::complete:
            return 200;
        case State::bad:
            return reader.error_status();
    }
    return -1;
}

TEST(HttpRequest, ReadsAScrapeAsPrometheusSendsIt) {
    const std::string scrape =
        "GET /metrics HTTP/1.1\r\nHost: 10.0.0.5:9100\r\nUser-Agent: Prometheus/2.45.0\r\n"
        "Accept: text/plain;version=0.0.4;q=1,*/*;q=0.1\r\nX-Prometheus-Scrape-Timeout-Seconds: "
        "10\r\n\r\n";
    const HttpRequestReader reader = read_all(scrape);
    ASSERT_EQ(reader.state(), State::complete);
    EXPECT_EQ(reader.method(), "GET");
    EXPECT_EQ(reader.target(), "/metrics");
}

TEST(HttpRequest, PiecesOfAnySizeReadTheSame) {
    const std::string request = "HEAD /metrics?x=1 HTTP/1.0\nAccept: */*\n\n";
    for (std::size_t piece = 1; piece <= request.size(); ++piece) {
        HttpRequestReader reader;
        for (std::size_t at = 0; at < request.size(); at += piece) {
            const State state = reader.feed(std::string_view(request).substr(at, piece));
            EXPECT_EQ(state, at + piece >= request.size() ? State::complete : State::incomplete)
                << "piece " << piece << " at " << at;
        }
        EXPECT_EQ(reader.method(), "HEAD");
        EXPECT_EQ(reader.target(), "/metrics?x=1");
    }
}

TEST(HttpRequest, IsIncompleteUntilTheEmptyLine) {
    EXPECT_EQ(outcome(""), 0);
    EXPECT_EQ(outcome("GET /metr"), 0);
    EXPECT_EQ(outcome("GET /metrics HTTP/1.1\r\n"), 0);
    EXPECT_EQ(outcome("GET /metrics HTTP/1.1\r\nHost: a\r\n"), 0);
    EXPECT_EQ(outcome("GET /metrics HTTP/1.1\r\nHost: a\r\n\r"), 0);
    EXPECT_EQ(outcome("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"), 200);
}

// "A server SHOULD ignore at least one empty line before the request line" (RFC 9112 2.2).
TEST(HttpRequest, IgnoresAnEmptyLineOrTwoBeforeTheRequestLine) {
    EXPECT_EQ(outcome("\r\nGET /metrics HTTP/1.1\r\n\r\n"), 200);
    EXPECT_EQ(outcome("\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n"), 200);
    EXPECT_EQ(outcome("\r\n\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n"), 400);
}

TEST(HttpRequest, AMalformedRequestLineIs400AndAnotherVersion505) {
    EXPECT_EQ(outcome("GET /metrics\r\n\r\n"), 400);  // HTTP/0.9
    EXPECT_EQ(outcome("GET\r\n\r\n"), 400);
    EXPECT_EQ(outcome("GET  HTTP/1.1\r\n\r\n"), 400);          // no target
    EXPECT_EQ(outcome("GET /a b HTTP/1.1\r\n\r\n"), 400);      // a space in the target
    EXPECT_EQ(outcome("G(T /metrics HTTP/1.1\r\n\r\n"), 400);  // not a token
    EXPECT_EQ(outcome("GET /m\x01 HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(outcome("GET /metrics HTTP/1.1 \r\n\r\n"), 400);
    EXPECT_EQ(outcome("GET /metrics FTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(outcome(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15)),
              400);
    EXPECT_EQ(outcome("GET /metrics HTTP/2.0\r\n\r\n"), 505);
    EXPECT_EQ(outcome("GET /metrics HTTP/1.2\r\n\r\n"), 505);
}

TEST(HttpRequest, AMalformedHeaderLineIs400) {
    const std::string line = "GET /metrics HTTP/1.1\r\n";
    EXPECT_EQ(outcome(line + "no colon\r\n\r\n"), 400);
    EXPECT_EQ(outcome(line + "Host : a\r\n\r\n"), 400);  // space before the colon
    EXPECT_EQ(outcome(line + ": a\r\n\r\n"), 400);       // no name
    EXPECT_EQ(outcome(line + "Host: a\r\n folded\r\n\r\n"), 400);
    EXPECT_EQ(outcome(line + std::string("Host: a\0z\r\n\r\n", 12)), 400);
    EXPECT_EQ(outcome(line + "Host: a\tb\r\n\r\n"), 200);
}

TEST(HttpRequest, AHeadTooLargeIs431) {
    const std::string line = "GET /metrics HTTP/1.1\r\n";
    std::string lines = line;
    for (std::size_t i = 0; i < HttpRequestReader::kMaxHeaderLines - 1; ++i) lines += "A: b\r\n";
    EXPECT_EQ(outcome(lines + "\r\n"), 200) << "the request line and 63 header lines";
    EXPECT_EQ(outcome(lines + "A: b\r\n\r\n"), 431);

    const std::string big = line + "X: " + std::string(HttpRequestReader::kMaxHeadBytes, 'x');
    EXPECT_EQ(outcome(big), 431);
    HttpRequestReader slow;  // the same limit when the bytes trickle in
    for (char c : big) {
        if (slow.feed(std::string(1, c)) != State::incomplete) break;
    }
    EXPECT_EQ(slow.state(), State::bad);
    EXPECT_EQ(slow.error_status(), 431);

    const std::string at_limit =
        line + "X: " + std::string(HttpRequestReader::kMaxHeadBytes - line.size() - 7, 'x') +
        "\r\n\r\n";
    ASSERT_EQ(at_limit.size(), HttpRequestReader::kMaxHeadBytes);
    EXPECT_EQ(outcome(at_limit), 200);
    EXPECT_EQ(outcome(at_limit.substr(0, at_limit.size() - 2) + "x\r\n\r\n"), 431);
}

TEST(HttpRequest, BytesAfterTheHeadAreIgnored) {
    HttpRequestReader reader;
    EXPECT_EQ(reader.feed("GET /metrics HTTP/1.1\r\n\r\nbody bytes and more"), State::complete);
    EXPECT_EQ(reader.feed("garbage\r\n\r\n"), State::complete);
    EXPECT_EQ(reader.target(), "/metrics");
    HttpRequestReader bad;
    EXPECT_EQ(bad.feed("nonsense\r\n"), State::bad);
    EXPECT_EQ(bad.feed("GET /metrics HTTP/1.1\r\n\r\n"), State::bad);
}

}  // namespace
}  // namespace taskpipe
