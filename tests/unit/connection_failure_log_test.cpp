// The log of connections a server socket could not take
// (common/include/taskpipe/connection_failure_log.hpp), over tcp loopback in one process.
//
// "... with CURVE, handshakes that failed (a client without CURVE, or with the wrong server
// key), which end before the ZAP handler is asked."

#include "taskpipe/connection_failure_log.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "taskpipe/curve.hpp"
#include "taskpipe/sockets.hpp"
#include "taskpipe/zap_handler.hpp"

namespace taskpipe {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

template <typename Condition>
bool wait_for(Condition&& condition, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (!condition()) {
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

SocketOptions curve_server(const CurveKeyPair& server) {
    SocketOptions o;
    o.name = "tasks";
    o.curve = CurveSocketOptions{};
    o.curve->server = true;
    o.curve->public_key = server.public_key;
    o.curve->secret_key = server.secret_key;
    o.curve->zap_domain = "tasks";
    return o;
}

SocketOptions curve_client(const CurveKeyPair& client, const std::string& server_key) {
    SocketOptions o;
    o.curve = CurveSocketOptions{};
    o.curve->public_key = client.public_key;
    o.curve->secret_key = client.secret_key;
    o.curve->server_key = server_key;
    return o;
}

TEST(ConnectionFailureLog, ClientsWithoutCurveOrWithTheWrongServerKeyAreCounted) {
    zmq::context_t context;
    const CurveKeyPair server = generate_key_pair();
    const CurveKeyPair allowed = generate_key_pair();
    ConnectionFailureLog log(context, {"tasks"});
    ZapHandler handler(context, {{"tasks", {allowed.public_key}}});
    zmq::socket_t push =
        bind_socket(context, zmq::socket_type::push, curve_server(server), "tcp://127.0.0.1:*");
    const std::string endpoint = last_endpoint(push);
    zmq::socket_t plain = connect_socket(context, zmq::socket_type::pull, {}, endpoint);
    ASSERT_TRUE(wait_for([&] { return log.handshake_failures() >= 1; }, 10s));
    const auto before = log.handshake_failures();
    zmq::socket_t misled =
        connect_socket(context, zmq::socket_type::pull,
                       curve_client(allowed, generate_key_pair().public_key), endpoint);
    ASSERT_TRUE(wait_for([&] { return log.handshake_failures() > before; }, 10s));
    EXPECT_FALSE(push.send(zmq::str_buffer("x"), zmq::send_flags::dontwait))
        << "a refused peer counts as connected";
    EXPECT_EQ(handler.refused(), 0u) << "the ZAP handler was never asked";
    EXPECT_EQ(log.accept_failures(), 0u);
}

// Without CURVE nothing is logged for a client that speaks ZMTP: only failed accepts would be.
TEST(ConnectionFailureLog, APlainSocketLogsNoHandshakes) {
    zmq::context_t context;
    ConnectionFailureLog log(context, {"tasks"});
    SocketOptions o;
    o.name = "tasks";
    zmq::socket_t push = bind_socket(context, zmq::socket_type::push, o, "tcp://127.0.0.1:*");
    zmq::socket_t pull = connect_socket(context, zmq::socket_type::pull, {}, last_endpoint(push));
    push.send(zmq::str_buffer("x"), zmq::send_flags::none);
    zmq::message_t message;
    ASSERT_TRUE(pull.recv(message, zmq::recv_flags::none));
    EXPECT_EQ(log.handshake_failures(), 0u);
    EXPECT_EQ(log.accept_failures(), 0u);
}

TEST(ConnectionFailureLog, StopsPromptlyAndAgainWhenTheContextIsGone) {
    zmq::context_t context;
    const auto start = Clock::now();
    { ConnectionFailureLog log(context, {"a", "b"}); }
    EXPECT_LT(Clock::now() - start, 500ms) << "the destructor waited for a poll interval";
    ConnectionFailureLog log(context, {"c"});
    context.shutdown();  // the thread's poll fails (ETERM); the destructor must still return
}

}  // namespace
}  // namespace taskpipe
