// The ventilator's conversation with the sink, against a fake clock: when it says Hello, when it
// holds its deadlines, when it sees a restarted sink and when it gives up (issue 10: "the batch
// survives a paused or restarted sink or ventilator, and never waits for ever").
#include "sink_session.hpp"

#include <gtest/gtest.h>

namespace taskpipe {
namespace {

using namespace std::chrono_literals;
using TimePoint = SinkSession::TimePoint;

class SinkSessionTest : public ::testing::Test {
  protected:
    TimePoint now = TimePoint{} + 1h;
    SinkSession session{{.liveness_timeout = 5s, .give_up = 60s}, now};

    void hello_if_due() {
        if (session.hello_due(now)) session.hello_sent(now);
    }
};

TEST_F(SinkSessionTest, SaysHelloEverySecondUntilWelcomed) {
    EXPECT_TRUE(session.hello_due(now));
    session.hello_sent(now);
    EXPECT_FALSE(session.hello_due(now + 999ms));
    EXPECT_TRUE(session.hello_due(now + 1s));
    EXPECT_EQ(session.welcome(42, now), SinkSession::Welcomed::first);
    EXPECT_TRUE(session.welcomed());
    EXPECT_EQ(session.sink(), 42u);
    EXPECT_FALSE(session.hello_due(now + 2s));
}

// "The ventilator opens a new control connection, but it sends hello only until the sink first
// welcomes it." Now: after 2.5 s without a word, Hello again, every second.
TEST_F(SinkSessionTest, SaysHelloAgainOnceTheSinkHasBeenSilentForAWhile) {
    hello_if_due();
    session.welcome(42, now);
    now += 2s;
    EXPECT_FALSE(session.hello_due(now));
    now += 500ms;
    EXPECT_TRUE(session.hello_due(now));
    session.hello_sent(now);
    EXPECT_FALSE(session.hello_due(now + 500ms));
    EXPECT_TRUE(session.hello_due(now + 1s));
    session.heard(now + 1s);
    EXPECT_FALSE(session.hello_due(now + 1s));
}

TEST_F(SinkSessionTest, SaysHelloAtOnceOnANewConnection) {
    session.connected();  // before any Welcome: nothing special
    hello_if_due();
    session.welcome(42, now);
    EXPECT_FALSE(session.hello_due(now));
    session.connected();
    EXPECT_TRUE(session.hello_due(now));
    session.hello_sent(now);
    EXPECT_FALSE(session.hello_due(now));
}

TEST_F(SinkSessionTest, TellsAWelcomeFromARestartedSinkFromOneFromTheSameSink) {
    session.welcome(42, now);
    EXPECT_EQ(session.welcome(42, now), SinkSession::Welcomed::again);
    EXPECT_EQ(session.welcome(43, now), SinkSession::Welcomed::new_sink);
    EXPECT_EQ(session.sink(), 43u);
}

TEST_F(SinkSessionTest, IsSilentAfterALivenessTimeoutWithoutAWord) {
    session.welcome(42, now);
    EXPECT_FALSE(session.silent(now + 5s));
    EXPECT_TRUE(session.silent(now + 5s + 1ms));
    session.heard(now + 5s);
    EXPECT_FALSE(session.silent(now + 6s));
}

// "Nobody tells the ventilator that the sink is gone ... Wanted: a documented give-up timeout."
TEST_F(SinkSessionTest, GivesUpAfterTheGiveUpTimeoutWaitingOrWelcomed) {
    EXPECT_FALSE(session.gave_up(now + 59s));
    EXPECT_TRUE(session.gave_up(now + 60s));
    session.welcome(42, now + 30s);
    EXPECT_FALSE(session.gave_up(now + 89s));
    EXPECT_TRUE(session.gave_up(now + 90s));
}

TEST_F(SinkSessionTest, NeverGivesUpWithATimeoutOfZero) {
    SinkSession patient{{.liveness_timeout = 5s, .give_up = 0s}, now};
    EXPECT_FALSE(patient.gave_up(now + 24h));
}

// "The only message says 'no word from the sink', even when the ventilator was the one stopped."
TEST_F(SinkSessionTest, APauseOfThisProcessIsNotTheSinksSilence) {
    session.welcome(42, now);
    now += 70s;  // stopped for 70 s
    session.paused(70s);
    EXPECT_FALSE(session.silent(now));
    EXPECT_FALSE(session.gave_up(now));
}

}  // namespace
}  // namespace taskpipe
