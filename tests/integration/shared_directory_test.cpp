// The sink's output files in a directory that other users may write to (docs/security.md,
// "Files"): links they plant where the sink will write are refused, never followed, and the
// files they point to are left alone.
//
//   "The last component of a path is never followed if it is a symbolic link." "Nothing is
//   written outside DIR." "Bad input gets a clear error and a non-zero exit."
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/binaries.hpp"
#include "support/pipeline.hpp"
#include "support/process.hpp"
#include "support/results.hpp"
#include "support/temp_dir.hpp"

namespace taskpipe::testing {
namespace {

using namespace std::chrono_literals;

std::string contents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

// --joblog and --stats given a planted link: exit 2 at start-up, one error line, target intact.
TEST(SharedDirectory, AJoblogOrStatsFileThatIsALinkStopsTheSinkAtStartUp) {
    TempDir dir;
    const std::string target = dir.file("precious");
    std::ofstream(target) << "line one\nthe last line";
    for (const std::string option : {"--joblog", "--stats"}) {
        const std::string link = dir.file("planted" + option);
        ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
        Process sink({sink_path(), "--bind", dir.ipc_endpoint("results"), "--control",
                      dir.ipc_endpoint("control"), option, link});
        ASSERT_EQ(sink.wait_for_exit(deadline_in(10s)), 2) << sink.describe();
        const auto lines = split_lines(sink.stderr_text());
        ASSERT_EQ(lines.size(), 1u) << sink.describe();
        EXPECT_TRUE(is_log_line(lines[0], "sink", "error")) << lines[0];
        EXPECT_NE(lines[0].find(link + " is a symbolic link, which the sink does not follow"),
                  std::string::npos)
            << lines[0];
        EXPECT_EQ(contents(target), "line one\nthe last line") << option;
    }
}

// --results DIR where DIR/1 was planted as a link to a directory elsewhere: the sink stops with
// status 2 when task 1's result comes rather than write outside DIR.
TEST(SharedDirectory, ATaskDirectoryThatIsALinkStopsTheSinkBeforeWritingOutsideDir) {
    TempDir dir;
    std::filesystem::create_directory(dir.file("elsewhere"));
    std::filesystem::create_directory(dir.file("out"));
    ASSERT_EQ(::symlink(dir.file("elsewhere").c_str(), dir.file("out/1").c_str()), 0);
    Pipeline pipeline(Endpoints::ipc(dir));
    Process& sink = pipeline.start_sink({"--results", dir.file("out")});
    pipeline.start_ventilator(Stdin::data("a\nb\nc\n"));
    pipeline.start_worker({"--builtin", "echo"});
    ASSERT_EQ(sink.wait_for_exit(deadline_in(30s)), 2) << sink.describe();
    EXPECT_NE(sink.stderr_text().find(dir.file("out/1") +
                                      " is a symbolic link, which the sink does not follow"),
              std::string::npos)
        << sink.describe();
    EXPECT_TRUE(std::filesystem::is_empty(dir.file("elsewhere")));
}

}  // namespace
}  // namespace taskpipe::testing
