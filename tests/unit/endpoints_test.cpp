// Endpoint validation (common/include/taskpipe/endpoints.hpp).
//
// "Accepted forms: tcp://HOST:PORT (PORT 1-65535, or * when binding), ipc://PATH,
// inproc://NAME."

#include "taskpipe/endpoints.hpp"

#include <gtest/gtest.h>

#include <string>

namespace taskpipe {
namespace {

struct Case {
    const char* name;
    const char* endpoint;
    EndpointUse use;
};

std::string case_name(const testing::TestParamInfo<Case>& info) { return info.param.name; }

class AcceptedEndpoint : public testing::TestWithParam<Case> {};

TEST_P(AcceptedEndpoint, HasNoError) {
    const auto error = endpoint_error(GetParam().endpoint, GetParam().use);
    EXPECT_FALSE(error.has_value()) << *error;
}

INSTANTIATE_TEST_SUITE_P(
    EndpointError, AcceptedEndpoint,
    testing::Values(Case{"TcpWildcardHostForBind", "tcp://*:5557", EndpointUse::bind},
                    Case{"TcpNamedHostForConnect", "tcp://localhost:5557", EndpointUse::connect},
                    Case{"TcpNamedHostForBind", "tcp://localhost:5557", EndpointUse::bind},
                    Case{"TcpAddressForConnect", "tcp://127.0.0.1:5557", EndpointUse::connect},
                    Case{"TcpWildcardPortForBind", "tcp://127.0.0.1:*", EndpointUse::bind},
                    Case{"TcpLowestPort", "tcp://localhost:1", EndpointUse::connect},
                    Case{"TcpHighestPort", "tcp://localhost:65535", EndpointUse::connect},
                    Case{"Ipv6Loopback", "tcp://[::1]:5557", EndpointUse::connect},
                    Case{"IpcForBind", "ipc:///tmp/x", EndpointUse::bind},
                    Case{"IpcForConnect", "ipc:///tmp/x", EndpointUse::connect},
                    Case{"InprocForBind", "inproc://x", EndpointUse::bind},
                    Case{"InprocForConnect", "inproc://x", EndpointUse::connect}),
    case_name);

class RefusedEndpoint : public testing::TestWithParam<Case> {};

TEST_P(RefusedEndpoint, SaysWhy) {
    const auto error = endpoint_error(GetParam().endpoint, GetParam().use);
    ASSERT_TRUE(error.has_value());
    EXPECT_FALSE(error->empty());
    // The message names the endpoint, so that the user sees which argument is wrong.
    EXPECT_NE(error->find(GetParam().endpoint), std::string::npos) << *error;
}

INSTANTIATE_TEST_SUITE_P(
    EndpointError, RefusedEndpoint,
    testing::Values(Case{"NoTransport", "localhost:5557", EndpointUse::connect},
                    Case{"NoTransportBind", "*:5557", EndpointUse::bind},
                    Case{"Empty", "", EndpointUse::connect},
                    Case{"Udp", "udp://localhost:5557", EndpointUse::connect},
                    Case{"UppercaseTcp", "TCP://localhost:5557", EndpointUse::connect},
                    Case{"TcpWithoutPort", "tcp://host", EndpointUse::connect},
                    Case{"TcpWithoutPortBind", "tcp://*", EndpointUse::bind},
                    Case{"TcpEmptyPort", "tcp://host:", EndpointUse::connect},
                    Case{"TcpEmptyHost", "tcp://:5557", EndpointUse::connect},
                    Case{"TcpPortZero", "tcp://localhost:0", EndpointUse::connect},
                    Case{"TcpPortZeroBind", "tcp://*:0", EndpointUse::bind},
                    Case{"TcpPort65536", "tcp://localhost:65536", EndpointUse::connect},
                    Case{"TcpPort70000", "tcp://localhost:70000", EndpointUse::connect},
                    Case{"TcpPortNotANumber", "tcp://localhost:abc", EndpointUse::connect},
                    Case{"TcpPortWithTrailingText", "tcp://localhost:55x", EndpointUse::connect},
                    Case{"TcpNegativePort", "tcp://localhost:-1", EndpointUse::connect},
                    Case{"TcpWildcardPortForConnect", "tcp://127.0.0.1:*", EndpointUse::connect},
                    Case{"TcpWildcardHostForConnect", "tcp://*:5557", EndpointUse::connect},
                    Case{"IpcEmptyPath", "ipc://", EndpointUse::bind},
                    Case{"InprocEmptyName", "inproc://", EndpointUse::connect}),
    case_name);

TEST(LocalConnectEndpoint, TurnsWildcardHostIntoLocalhost) {
    EXPECT_EQ(local_connect_endpoint("tcp://*:5557"), "tcp://localhost:5557");
    EXPECT_EQ(local_connect_endpoint("tcp://*:41234"), "tcp://localhost:41234");
}

TEST(LocalConnectEndpoint, LeavesOtherEndpointsUnchanged) {
    EXPECT_EQ(local_connect_endpoint("tcp://127.0.0.1:5557"), "tcp://127.0.0.1:5557");
    EXPECT_EQ(local_connect_endpoint("tcp://localhost:5557"), "tcp://localhost:5557");
    EXPECT_EQ(local_connect_endpoint("ipc:///tmp/x"), "ipc:///tmp/x");
    EXPECT_EQ(local_connect_endpoint("inproc://x"), "inproc://x");
}

TEST(LocalConnectEndpoint, ResultIsAcceptedForConnect) {
    const auto connect = local_connect_endpoint("tcp://*:5557");
    const auto error = endpoint_error(connect, EndpointUse::connect);
    EXPECT_FALSE(error.has_value()) << *error;
}

}  // namespace
}  // namespace taskpipe
