// The ZAP handler (common/include/taskpipe/zap_handler.hpp), over tcp loopback in one process.
//
// "Authorisation is per socket: each server socket sets a ZAP domain naming it ... and the
// handler admits a key on a domain only if that domain's allow-list holds it; a domain without
// an allow-list admits nobody." "It answers 200 for mechanism CURVE with a key allowed on the
// request's domain and 400 for anything else." "If its thread fails it stays bound without
// answering ... and check() throws."

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

SocketOptions server_options(const CurveKeyPair& server, const std::string& domain = "tasks") {
    SocketOptions o;
    o.curve = CurveSocketOptions{};
    o.curve->server = true;
    o.curve->public_key = server.public_key;
    o.curve->secret_key = server.secret_key;
    o.curve->zap_domain = domain;
    return o;
}

std::string binary(const std::string& z85_key) {
    std::string key(32, '\0');
    EXPECT_NE(zmq_z85_decode(reinterpret_cast<std::uint8_t*>(key.data()), z85_key.c_str()),
              nullptr);
    return key;
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

TEST(ZapPolicy, AdmitsAKeyOnlyOnTheDomainsThatListIt) {
    const CurveKeyPair server = generate_key_pair();
    const CurveKeyPair worker = generate_key_pair();
    const ZapPolicy policy({{"results", {worker.public_key}}, {"control", {server.public_key}}});
    EXPECT_EQ(policy.refusal("results", "CURVE", binary(worker.public_key)), std::nullopt);
    EXPECT_EQ(policy.refusal("control", "CURVE", binary(server.public_key)), std::nullopt);

    const auto worker_on_control = policy.refusal("control", "CURVE", binary(worker.public_key));
    ASSERT_TRUE(worker_on_control);
    EXPECT_EQ(*worker_on_control, "public key " + worker.public_key +
                                      " is not on the allow-list (it is allowed on results, not "
                                      "on control)");
    const auto server_on_results = policy.refusal("results", "CURVE", binary(server.public_key));
    ASSERT_TRUE(server_on_results);
    EXPECT_NE(server_on_results->find("is not on the allow-list"), std::string::npos);

    const std::string stranger = generate_key_pair().public_key;
    EXPECT_EQ(policy.refusal("results", "CURVE", binary(stranger)),
              "public key " + stranger + " is not on the allow-list");
}

TEST(ZapPolicy, ADomainWithoutAnAllowListAdmitsNobody) {
    const CurveKeyPair worker = generate_key_pair();
    const ZapPolicy policy({{"tasks", {worker.public_key}}, {"listen", {}}});
    EXPECT_TRUE(policy.refusal("listen", "CURVE", binary(worker.public_key)));
    EXPECT_EQ(policy.refusal("", "CURVE", binary(worker.public_key)),
              "this socket has no allow-list");
    EXPECT_EQ(policy.refusal("Tasks", "CURVE", binary(worker.public_key)),
              "this socket has no allow-list");
}

TEST(ZapPolicy, OnlyCurveIsAdmitted) {
    const CurveKeyPair worker = generate_key_pair();
    const ZapPolicy policy({{"tasks", {worker.public_key}}});
    EXPECT_EQ(policy.refusal("tasks", "NULL", ""), "it uses NULL, not CURVE");
    EXPECT_EQ(policy.refusal("tasks", "PLAIN", binary(worker.public_key)),
              "it uses PLAIN, not CURVE");
}

TEST(ZapPolicy, AKeyThatIsNotZ85IsAStartupError) {
    EXPECT_THROW(ZapPolicy(ZapDomains{{"tasks", {"not a key"}}}), StartupError);
}

TEST(ZapHandler, LetsOnlyAllowedKeysIn) {
    zmq::context_t context;
    const CurveKeyPair server = generate_key_pair();
    const CurveKeyPair allowed = generate_key_pair();
    const CurveKeyPair unknown = generate_key_pair();
    ZapHandler handler(context, {{"tasks", {allowed.public_key}}});
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

// The sink's case: a worker key, allowed on results, connects a DEALER to the control socket,
// which admits the server key pair alone; nothing it sends arrives, while the server key's
// messages do.
TEST(ZapHandler, AKeyAllowedOnOneSocketIsRefusedOnAnother) {
    zmq::context_t context;
    const CurveKeyPair server = generate_key_pair();
    const CurveKeyPair worker = generate_key_pair();
    ZapHandler handler(context,
                       {{"results", {worker.public_key}}, {"control", {server.public_key}}});
    zmq::socket_t control = bind_socket(context, zmq::socket_type::router,
                                        server_options(server, "control"), "tcp://127.0.0.1:*");
    zmq::socket_t results = bind_socket(context, zmq::socket_type::pull,
                                        server_options(server, "results"), "tcp://127.0.0.1:*");

    zmq::socket_t intruder =
        connect_socket(context, zmq::socket_type::dealer, client_options(worker, server.public_key),
                       last_endpoint(control));
    ASSERT_TRUE(intruder.send(zmq::str_buffer("from a worker"), zmq::send_flags::dontwait));
    ASSERT_TRUE(wait_for([&] { return handler.refused() >= 1; }, 10s));

    // The same worker key is welcome on results.
    zmq::socket_t worker_push =
        connect_socket(context, zmq::socket_type::push, client_options(worker, server.public_key),
                       last_endpoint(results));
    worker_push.send(zmq::str_buffer("a result"), zmq::send_flags::none);
    EXPECT_EQ(receive(results, 10s), "a result");

    zmq::socket_t ventilator =
        connect_socket(context, zmq::socket_type::dealer, client_options(server, server.public_key),
                       last_endpoint(control));
    ventilator.send(zmq::str_buffer("from the ventilator"), zmq::send_flags::none);
    // ROUTER: the routing id, then the message; only the ventilator's ever arrives.
    ASSERT_TRUE(receive(control, 10s));
    zmq::message_t body;
    ASSERT_TRUE(control.recv(body, zmq::recv_flags::dontwait));
    EXPECT_EQ(body.to_string(), "from the ventilator");
    EXPECT_EQ(receive(control, 500ms), std::nullopt) << "the worker's message got through";
    handler.check();
}

TEST(ZapHandler, ASecondHandlerOnTheSameContextCannotStart) {
    zmq::context_t context;
    ZapHandler first(context, {});
    EXPECT_THROW(ZapHandler(context, {}), StartupError);
    first.check();
}

TEST(ZapHandler, AFailedHandlerMakesCheckThrow) {
    zmq::context_t context;
    ZapHandler handler(context, {});
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
