// The ZAP handler (common/include/taskpipe/zap_handler.hpp), over tcp loopback in one process.
//
// "It answers 200 for mechanism CURVE with an allowed public key and 400 for anything else."
// "If its thread fails it stays bound without answering ... and check() throws."

#include "taskpipe/zap_handler.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "taskpipe/curve.hpp"
#include "taskpipe/sockets.hpp"

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

SocketOptions server_options(const CurveKeyPair& server) {
    SocketOptions o;
    o.curve = CurveSocketOptions{};
    o.curve->server = true;
    o.curve->public_key = server.public_key;
    o.curve->secret_key = server.secret_key;
    o.curve->zap_domain = "tasks";
    o.curve->monitor_endpoint = ZapHandler::monitor_endpoint("tasks");
    return o;
}

SocketOptions client_options(const CurveKeyPair& client, const std::string& server_key) {
    SocketOptions o;
    o.curve = CurveSocketOptions{};
    o.curve->public_key = client.public_key;
    o.curve->secret_key = client.secret_key;
    o.curve->server_key = server_key;
    return o;
}

std::optional<std::string> receive(zmq::socket_t& socket, std::chrono::milliseconds limit) {
    std::vector<zmq::pollitem_t> items = {{socket.handle(), 0, ZMQ_POLLIN, 0}};
    if (poll(items, limit) <= 0) return std::nullopt;
    zmq::message_t message;
    if (!socket.recv(message, zmq::recv_flags::dontwait)) return std::nullopt;
    return message.to_string();
}

TEST(ZapHandler, LetsOnlyAllowedKeysIn) {
    zmq::context_t context;
    const CurveKeyPair server = generate_key_pair();
    const CurveKeyPair allowed = generate_key_pair();
    const CurveKeyPair unknown = generate_key_pair();
    ZapHandler handler(context, {allowed.public_key}, {"tasks"});
    zmq::socket_t push =
        bind_socket(context, zmq::socket_type::push, server_options(server), "tcp://127.0.0.1:*");
    const std::string endpoint = last_endpoint(push);

    zmq::socket_t intruder = connect_socket(context, zmq::socket_type::pull,
                                            client_options(unknown, server.public_key), endpoint);
    ASSERT_TRUE(wait_for([&] { return handler.refused() >= 1; }, 10s));
    handler.check();

    zmq::socket_t worker = connect_socket(context, zmq::socket_type::pull,
                                          client_options(allowed, server.public_key), endpoint);
    // PUSH hands messages only to peers whose handshake completed: the worker gets them all.
    for (int i = 0; i < 10; ++i) push.send(zmq::buffer(std::to_string(i)), zmq::send_flags::none);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(receive(worker, 10s), std::to_string(i));
    EXPECT_EQ(receive(intruder, 200ms), std::nullopt);
}

TEST(ZapHandler, ClientsWithoutCurveOrWithTheWrongServerKeyAreRefusedAndCounted) {
    zmq::context_t context;
    const CurveKeyPair server = generate_key_pair();
    const CurveKeyPair allowed = generate_key_pair();
    ZapHandler handler(context, {allowed.public_key}, {"tasks"});
    zmq::socket_t push =
        bind_socket(context, zmq::socket_type::push, server_options(server), "tcp://127.0.0.1:*");
    const std::string endpoint = last_endpoint(push);
    zmq::socket_t plain = connect_socket(context, zmq::socket_type::pull, {}, endpoint);
    ASSERT_TRUE(wait_for([&] { return handler.refused() >= 1; }, 10s));
    const auto before = handler.refused();
    zmq::socket_t misled =
        connect_socket(context, zmq::socket_type::pull,
                       client_options(allowed, generate_key_pair().public_key), endpoint);
    ASSERT_TRUE(wait_for([&] { return handler.refused() > before; }, 10s));
    EXPECT_FALSE(push.send(zmq::str_buffer("x"), zmq::send_flags::dontwait))
        << "a refused peer counts as connected";
}

TEST(ZapHandler, ASecondHandlerOnTheSameContextCannotStart) {
    zmq::context_t context;
    ZapHandler first(context, {}, {});
    EXPECT_THROW(ZapHandler(context, {}, {}), StartupError);
    first.check();
}

TEST(ZapHandler, AFailedHandlerMakesCheckThrow) {
    zmq::context_t context;
    ZapHandler handler(context, {}, {});
    context.shutdown();  // every blocking call in the handler's thread now fails (ETERM)
    EXPECT_TRUE(wait_for(
        [&] {
            try {
                handler.check();
                return false;
            } catch (const StartupError&) {
                return true;
            }
        },
        10s));
}

}  // namespace
}  // namespace taskpipe
