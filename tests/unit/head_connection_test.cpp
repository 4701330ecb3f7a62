// The connection to the head as submit sees it (submit/head_connection.hpp): "connecting until
// the first ZMTP handshake (CURVE included) succeeds, then up, or down with a reason a person
// can act on."

#include "head_connection.hpp"

#include <gtest/gtest.h>
#include <zmq.h>

namespace taskpipe {
namespace {

using State = HeadConnection::State;

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

TEST(HeadConnection, NothingListeningIsReportedAtTheFirstRetry) {
    HeadConnection c("tcp://localhost:5560", false);
    EXPECT_EQ(c.state(), State::connecting);
    EXPECT_TRUE(c.on_event(ZMQ_EVENT_CONNECT_RETRIED, 100));
    EXPECT_EQ(c.state(), State::down);
    EXPECT_TRUE(contains(c.reason(), "nothing answers at tcp://localhost:5560")) << c.reason();
}

TEST(HeadConnection, UpOnceTheHandshakeSucceeds) {
    HeadConnection c("ipc:///h", false);
    EXPECT_FALSE(c.on_event(ZMQ_EVENT_CONNECTED, 7));
    EXPECT_EQ(c.state(), State::connecting);
    EXPECT_TRUE(c.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0));
    EXPECT_EQ(c.state(), State::up);
    EXPECT_EQ(c.reason(), "");
}

TEST(HeadConnection, AClosedConnectionKeepsItsReasonThroughTheRetries) {
    HeadConnection c("ipc:///h", false);
    c.on_event(ZMQ_EVENT_CONNECTED, 7);
    c.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0);
    EXPECT_TRUE(c.on_event(ZMQ_EVENT_DISCONNECTED, 7));
    EXPECT_EQ(c.state(), State::down);
    EXPECT_EQ(c.reason(), "the connection to the head at ipc:///h closed");
    EXPECT_FALSE(c.on_event(ZMQ_EVENT_CONNECT_RETRIED, 100));
    EXPECT_EQ(c.reason(), "the connection to the head at ipc:///h closed");
    c.on_event(ZMQ_EVENT_CONNECTED, 8);
    EXPECT_TRUE(c.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0));
    EXPECT_EQ(c.state(), State::up);
}

TEST(HeadConnection, ARefusedCurveKeyNamesTheAllowList) {
    HeadConnection c("tcp://h:5560", true);
    c.on_event(ZMQ_EVENT_CONNECTED, 7);
    EXPECT_TRUE(c.on_event(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, 400));
    EXPECT_TRUE(contains(c.reason(), "refused this producer's CURVE key (ZAP status 400)"));
    EXPECT_TRUE(contains(c.reason(), "--curve-producers"));
}

TEST(HeadConnection, AHandshakeCutShortHintsAtCurve) {
    HeadConnection plain("tcp://h:5560", false);
    plain.on_event(ZMQ_EVENT_CONNECTED, 7);
    EXPECT_TRUE(plain.on_event(ZMQ_EVENT_DISCONNECTED, 7));
    EXPECT_TRUE(contains(plain.reason(), "during the handshake"));
    EXPECT_TRUE(contains(plain.reason(), "does the head use CURVE?"));
    HeadConnection curve("tcp://h:5560", true);
    curve.on_event(ZMQ_EVENT_CONNECTED, 7);
    EXPECT_TRUE(curve.on_event(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, 0));
    EXPECT_TRUE(contains(curve.reason(), "the wrong --curve-server key"));
}

}  // namespace
}  // namespace taskpipe
