// CURVE authentication with the real binaries (docs/security.md): "With security on, the
// ventilator and sink are CURVE servers and authenticate workers against an allow-list of public
// keys." "A worker with an unknown key, without CURVE, or with the wrong server key gets no task
// and cannot inject a result, while allowed workers keep working; the refusal is logged." "A
// secret key file readable by others is refused with a clear error (exit 2)."
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "support/binaries.hpp"
#include "support/pipeline.hpp"
#include "support/process.hpp"
#include "support/results.hpp"
#include "support/temp_dir.hpp"
#include "taskpipe/codec.hpp"
#include "taskpipe/curve.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kTasks = 50;

// Runs `keygen NAME` and returns NAME (the .key and .pub files are beside it).
std::string keygen(const std::string& name) {
    Process keygen({TASKPIPE_KEYGEN_PATH, name});
    const auto status = keygen.wait_for_exit(deadline_in(10s));
    if (status != 0) throw std::runtime_error("keygen failed\n" + keygen.describe());
    return name;
}

// The public key in a .pub file keygen wrote (the value between the quotes).
std::string public_key_of(const std::string& pub_file) {
    std::ifstream in(pub_file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto at = text.find("public-key = \"");
    if (at == std::string::npos) throw std::runtime_error("no public key in " + pub_file);
    return text.substr(at + 14, 40);
}

std::vector<std::string> payloads() {
    std::vector<std::string> lines;
    for (int i = 1; i <= kTasks; ++i) lines.push_back("curve-" + std::to_string(i));
    return lines;
}

std::string as_input(const std::vector<std::string>& lines) {
    std::string input;
    for (const auto& line : lines) input += line + "\n";
    return input;
}

// A three-host set-up in one directory: the server key pair the ventilator and the sink share,
// one allowed worker (its .pub in allow/), and a stranger whose key nobody allowed.
class Curve : public ::testing::Test {
  protected:
    void SetUp() override {
        std::filesystem::create_directory(dir_.file("allow"));
        server_ = keygen(dir_.file("server"));
        worker_ = keygen(dir_.file("allow/worker"));
        stranger_ = keygen(dir_.file("stranger"));
    }

    std::vector<std::string> server_args() const {
        return {"--curve-key", server_ + ".key", "--curve-allow", dir_.file("allow")};
    }
    // `--curve-*` options then the handler for a worker with key pair `key` that trusts
    // `server_pub` as the servers' public key.
    static std::vector<std::string> worker_args(const std::string& key,
                                                const std::string& server_pub,
                                                std::vector<std::string> handler) {
        std::vector<std::string> args = {"--curve-key", key, "--curve-server", server_pub};
        args.insert(args.end(), handler.begin(), handler.end());
        return args;
    }
    // A handler that leaves a trace if it ever runs a task.
    std::vector<std::string> intruder_handler() const {
        return {"--shell", "echo \"$1\" >> " + dir_.file("intruder-ran") + "; echo intruder"};
    }

    void expect_batch_completed_by_the_allowed_worker(Pipeline& pipeline) {
        const auto deadline = deadline_in(60s);
        ASSERT_EQ(pipeline.sink().wait_for_exit(deadline), 0) << pipeline.sink().describe();
        EXPECT_EQ(pipeline.ventilator().wait_for_exit(deadline), 0)
            << pipeline.ventilator().describe();
        const Tally tally = tally_lines(pipeline.sink().stdout_text(), payloads());
        EXPECT_TRUE(tally.exact()) << tally.describe();
        EXPECT_FALSE(std::filesystem::exists(dir_.file("intruder-ran")))
            << "a refused worker ran a task";
        // Anything an intruder got through to the sink would at least be counted here.
        EXPECT_EQ(pipeline.sink().stderr_text().find("malformed"), std::string::npos)
            << pipeline.sink().describe();
        EXPECT_EQ(pipeline.sink().stderr_text().find("other batches"), std::string::npos)
            << pipeline.sink().describe();
    }

    TempDir dir_;
    std::string server_;
    std::string worker_;
    std::string stranger_;
};

TEST_F(Curve, AnAllowedWorkerCompletesTheBatchExactlyOnce) {
    Pipeline pipeline;
    pipeline.start_sink(server_args());
    pipeline.start_ventilator(Stdin::data(as_input(payloads())), server_args());
    pipeline.start_worker(worker_args(worker_ + ".key", server_ + ".pub", {"--builtin", "echo"}));
    expect_batch_completed_by_the_allowed_worker(pipeline);
}

// An unknown key, no CURVE at all, the wrong server key: each is refused and logged by both
// servers, none of them runs a task, and the allowed worker started next to them does the batch.
TEST_F(Curve, RefusedWorkersGetNoTaskWhileTheAllowedOneDoesTheBatch) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink(server_args());
    Process& ventilator =
        pipeline.start_ventilator(Stdin::data(as_input(payloads())), server_args());
    const auto logged = deadline_in(20s);

    // Without CURVE (the handshake fails before any key is looked at).
    pipeline.start_worker(intruder_handler());
    ASSERT_TRUE(ventilator.wait_for_stderr("refused a client on tasks (", logged))
        << ventilator.describe();
    ASSERT_TRUE(sink.wait_for_stderr("refused a client on results (", logged)) << sink.describe();

    // With a key nobody allowed: the ZAP handler says no, naming the key.
    pipeline.start_worker(worker_args(stranger_ + ".key", server_ + ".pub", intruder_handler()));
    const std::string stranger_key = public_key_of(stranger_ + ".pub");
    const std::string refusal = "public key " + stranger_key + " is not on the allow-list";
    const auto on_tasks = ventilator.wait_for_stderr(refusal, logged);
    ASSERT_TRUE(on_tasks) << ventilator.describe();
    EXPECT_NE(on_tasks->find(" ventilator warning: refused a client on tasks from "),
              std::string::npos)
        << *on_tasks;
    ASSERT_TRUE(sink.wait_for_stderr(refusal, logged)) << sink.describe();

    // With an allowed key but the wrong server key: the CURVE handshake itself fails.
    pipeline.start_worker(worker_args(worker_ + ".key", stranger_ + ".pub", intruder_handler()));
    ASSERT_TRUE(ventilator.wait_for_stderr("wrong server key", logged)) << ventilator.describe();
    ASSERT_TRUE(sink.wait_for_stderr("wrong server key", logged)) << sink.describe();

    // Nothing was taken: with no admitted worker the batch cannot have moved.
    EXPECT_EQ(sink.stdout_text(), "");
    pipeline.start_worker(worker_args(worker_ + ".key", server_ + ".pub", {"--builtin", "echo"}));
    expect_batch_completed_by_the_allowed_worker(pipeline);
}

// A raw PUSH client on the sink's results socket, without CURVE and with an unknown key, tries
// to inject frames; none reaches the sink (a frame that did would be logged as malformed).
TEST_F(Curve, ForgedResultsNeverReachTheSink) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink(server_args());
    const std::string results = pipeline.endpoints().results;
    const auto logged = deadline_in(20s);

    zmq::context_t context;
    zmq::socket_t plain(context, zmq::socket_type::push);
    plain.set(zmq::sockopt::linger, 0);
    plain.connect(results);
    ASSERT_TRUE(plain.send(zmq::str_buffer("forged result"), zmq::send_flags::dontwait));
    ASSERT_TRUE(sink.wait_for_stderr("refused a client on results (", logged)) << sink.describe();

    char public_key[41] = {};
    char secret_key[41] = {};
    ASSERT_EQ(zmq_curve_keypair(public_key, secret_key), 0);
    zmq::socket_t curved(context, zmq::socket_type::push);
    curved.set(zmq::sockopt::linger, 0);
    curved.set(zmq::sockopt::curve_serverkey, public_key_of(server_ + ".pub"));
    curved.set(zmq::sockopt::curve_publickey, public_key);
    curved.set(zmq::sockopt::curve_secretkey, secret_key);
    curved.connect(results);
    ASSERT_TRUE(curved.send(zmq::str_buffer("forged result"), zmq::send_flags::dontwait));
    ASSERT_TRUE(sink.wait_for_stderr(
        "public key " + std::string(public_key) + " is not on the allow-list", logged))
        << sink.describe();

    pipeline.start_ventilator(Stdin::data(as_input(payloads())), server_args());
    pipeline.start_worker(worker_args(worker_ + ".key", server_ + ".pub", {"--builtin", "echo"}));
    expect_batch_completed_by_the_allowed_worker(pipeline);
}

// Issue 12, "a worker key makes a worker, nothing more": the sink's control socket admits only
// the server key pair it shares with the ventilator. A client with an allowed worker key says
// hello and announces a one-task batch on it before the ventilator comes; it is refused and
// logged naming control, gets no answer, and the real batch completes with every result.
TEST_F(Curve, AnAllowedWorkerKeyCannotUseTheSinksControlSocket) {
    Pipeline pipeline;
    Process& sink = pipeline.start_sink(server_args());
    const CurveKeyPair worker = load_key_pair(worker_ + ".key");

    zmq::context_t context;
    zmq::socket_t rogue(context, zmq::socket_type::dealer);
    rogue.set(zmq::sockopt::linger, 0);
    rogue.set(zmq::sockopt::curve_serverkey, public_key_of(server_ + ".pub"));
    rogue.set(zmq::sockopt::curve_publickey, worker.public_key);
    rogue.set(zmq::sockopt::curve_secretkey, worker.secret_key);
    rogue.connect(pipeline.endpoints().control);
    Encoder encoder;
    for (const Message& message : {Message{Hello{42}}, Message{End{42, 1}}}) {
        const auto bytes = encoder.encode(message);
        ASSERT_TRUE(rogue.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait));
    }
    const auto refused = sink.wait_for_stderr(
        "public key " + worker.public_key + " is not on the allow-list", deadline_in(20s));
    ASSERT_TRUE(refused) << sink.describe();
    EXPECT_NE(refused->find(" sink warning: refused a client on control from "), std::string::npos)
        << *refused;
    EXPECT_NE(refused->find("(it is allowed on results, not on control)"), std::string::npos)
        << *refused;

    pipeline.start_ventilator(Stdin::data(as_input(payloads())), server_args());
    pipeline.start_worker(worker_args(worker_ + ".key", server_ + ".pub", {"--builtin", "echo"}));
    expect_batch_completed_by_the_allowed_worker(pipeline);
    zmq::message_t answer;
    EXPECT_FALSE(rogue.recv(answer, zmq::recv_flags::dontwait)) << "the sink answered the rogue";
}

// The ventilator must hold the server key pair: one given another server key would be refused
// by the sink, so it stops at start-up instead of waiting for ever.
TEST_F(Curve, AVentilatorThatTrustsAnotherServerKeyStopsAtStartUp) {
    Process ventilator({ventilator_path(), "-b", "tcp://127.0.0.1:*", "--curve-key",
                        worker_ + ".key", "--curve-allow", dir_.file("allow"), "--curve-server",
                        server_ + ".pub"});
    ASSERT_EQ(ventilator.wait_for_exit(deadline_in(10s)), 2) << ventilator.describe();
    EXPECT_NE(ventilator.stderr_text().find("give both programs the same --curve-key"),
              std::string::npos)
        << ventilator.describe();
}

// "Keys are read from files; a secret key file readable by others (mode & 077) is refused with
// a clear error (exit 2)."
TEST_F(Curve, ASecretKeyFileOthersCanReadStopsEveryProgram) {
    const std::string key = server_ + ".key";
    ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
    const std::vector<std::vector<std::string>> commands = {
        {sink_path(), "--bind", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*",
         "--curve-key", key, "--curve-allow", dir_.file("allow")},
        {ventilator_path(), "-b", "tcp://127.0.0.1:*", "--curve-key", key, "--curve-allow",
         dir_.file("allow")},
        {worker_path(), "--curve-key", key, "--curve-server", server_ + ".pub", "--builtin",
         "echo"},
    };
    for (const auto& argv : commands) {
        Process process(argv);
        ASSERT_EQ(process.wait_for_exit(deadline_in(10s)), 2) << process.describe();
        const auto lines = split_lines(process.stderr_text());
        ASSERT_EQ(lines.size(), 1u) << process.describe();
        EXPECT_NE(lines[0].find(" error: secret key file " + key +
                                " is open to other users (mode 0644); run: chmod 600 " + key),
                  std::string::npos)
            << lines[0];
    }
}

// "Opening a FIFO as a key file hangs start-up": each program refuses it at once, exit 2.
TEST_F(Curve, AFifoGivenAsAKeyFileIsRefusedAtOnce) {
    const std::string fifo = dir_.file("fifo.key");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    const std::vector<std::vector<std::string>> commands = {
        {sink_path(), "--bind", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*",
         "--curve-key", fifo, "--curve-allow", dir_.file("allow")},
        {ventilator_path(), "-b", "tcp://127.0.0.1:*", "--curve-key", server_ + ".key",
         "--curve-allow", fifo},
        {worker_path(), "--curve-key", worker_ + ".key", "--curve-server", fifo, "--builtin",
         "echo"},
    };
    for (const auto& argv : commands) {
        Process process(argv);
        ASSERT_EQ(process.wait_for_exit(deadline_in(10s)), 2) << process.describe();
        EXPECT_NE(process.stderr_text().find(" error: " + fifo + " is not a regular file"),
                  std::string::npos)
            << process.describe();
    }
}

TEST_F(Curve, CurveOptionsThatDoNotGoTogetherAreUsageErrors) {
    struct Case {
        std::vector<std::string> argv;
        std::string says;
    };
    const std::vector<Case> cases = {
        {{sink_path(), "--curve-allow", dir_.file("allow")}, "need --curve-key"},
        {{sink_path(), "--curve-key", server_ + ".key"}, "needs --curve-allow"},
        {{worker_path(), "--curve-key", worker_ + ".key", "--builtin", "echo"},
         "needs --curve-server"},
        {{ventilator_path(), "--curve-server", server_ + ".pub"}, "need --curve-key"},
    };
    for (const auto& c : cases) {
        Process process(c.argv);
        ASSERT_EQ(process.wait_for_exit(deadline_in(10s)), 2) << process.describe();
        EXPECT_NE(process.stderr_text().find(c.says), std::string::npos) << process.describe();
    }
}

}  // namespace
}  // namespace taskpipe::testing
