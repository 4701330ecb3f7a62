// The --curve-* options (common/include/taskpipe/curve_options.hpp).
//
// "Servers: the public keys of --curve-allow, the workers. The program's own key is not among
// them." "Throws UsageError for options that do not go together."

#include "taskpipe/curve_options.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "taskpipe/program.hpp"

namespace taskpipe {
namespace {

namespace fs = std::filesystem;

constexpr CurveRoles kServer{.server = true, .client = false};
constexpr CurveRoles kClient{.server = false, .client = true};
constexpr CurveRoles kBoth{.server = true, .client = true};

class KeyDirectory : public testing::Test {
  protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "taskpipe-curveopt-XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
        server_ = generate_key_pair();
        worker_ = generate_key_pair();
        write_key_files((dir_ / "server").string(), server_);
        fs::create_directory(dir_ / "allow");
        write_key_files((dir_ / "allow" / "worker").string(), worker_);
    }
    void TearDown() override {
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }

    fs::path dir_;
    CurveKeyPair server_;
    CurveKeyPair worker_;
};

TEST(CurveOptions, OffUnlessCurveKeyIsGiven) {
    EXPECT_NO_THROW(check_curve_options({}, kBoth));
    EXPECT_EQ(load_curve_keys({}, kBoth), std::nullopt);
    EXPECT_THROW(check_curve_options({.key = "", .allow = {"a"}, .server = ""}, kServer),
                 UsageError);
    EXPECT_THROW(check_curve_options({.key = "", .allow = {}, .server = "s.pub"}, kClient),
                 UsageError);
}

TEST(CurveOptions, ServersNeedAnAllowListAndWorkersAServerKey) {
    EXPECT_THROW(check_curve_options({.key = "k", .allow = {}, .server = ""}, kServer), UsageError);
    EXPECT_THROW(check_curve_options({.key = "k", .allow = {}, .server = ""}, kClient), UsageError);
    EXPECT_NO_THROW(check_curve_options({.key = "k", .allow = {"a"}, .server = ""}, kBoth));
    EXPECT_NO_THROW(check_curve_options({.key = "k", .allow = {}, .server = "s"}, kClient));
}

TEST_F(KeyDirectory, AServerAllowsItsListButNotItsOwnKey) {
    const auto keys =
        load_curve_keys({.key = path("server.key"), .allow = {path("allow")}, .server = ""}, kBoth);
    ASSERT_TRUE(keys);
    EXPECT_EQ(keys->own.public_key, server_.public_key);
    EXPECT_EQ(keys->allowed, std::vector<std::string>{worker_.public_key});
    EXPECT_EQ(keys->server_key, server_.public_key) << "the ventilator defaults to its own key";
}

// "... a program that is both server and client (the ventilator) is given a --curve-server
// other than its own public key: the sink admits on its control socket only the server key pair
// the two share."
TEST_F(KeyDirectory, AVentilatorCannotTrustAServerKeyOtherThanItsOwn) {
    EXPECT_NO_THROW(load_curve_keys(
        {.key = path("server.key"), .allow = {path("allow")}, .server = path("server.pub")},
        kBoth));
    try {
        load_curve_keys({.key = path("server.key"),
                         .allow = {path("allow")},
                         .server = path("allow/worker.pub")},
                        kBoth);
        FAIL() << "no error";
    } catch (const StartupError& e) {
        EXPECT_NE(std::string(e.what()).find("give both programs the same --curve-key"),
                  std::string::npos)
            << e.what();
    }
}

TEST_F(KeyDirectory, AWorkerGetsTheServerKeyAndAllowsNobody) {
    const auto keys = load_curve_keys(
        {.key = path("allow/worker.key"), .allow = {}, .server = path("server.pub")}, kClient);
    ASSERT_TRUE(keys);
    EXPECT_EQ(keys->own.secret_key, worker_.secret_key);
    EXPECT_EQ(keys->server_key, server_.public_key);
    EXPECT_TRUE(keys->allowed.empty());
    const CurveSocketOptions client = curve_client_socket(*keys);
    EXPECT_FALSE(client.server);
    EXPECT_EQ(client.server_key, server_.public_key);
    const CurveSocketOptions server = curve_server_socket(*keys, "tasks");
    EXPECT_TRUE(server.server);
    EXPECT_EQ(server.zap_domain, "tasks");
}

}  // namespace
}  // namespace taskpipe
