// The sink's progress text (sink/progress.hpp): "done/total (total once stdin has ended),
// failed, rate, ETA, workers seen", cut to the terminal's width.
#include "progress.hpp"

#include <gtest/gtest.h>

#include <string>

namespace taskpipe {
namespace {

StatsSnapshot batch_under_way() {
    StatsSnapshot s;
    s.by_status[static_cast<std::size_t>(Status::ok)] = 247;
    s.by_status[static_cast<std::size_t>(Status::failed)] = 3;
    s.read = 400;
    s.workers["a:1"].live = true;
    s.workers["b:2"].live = true;
    s.workers["c:3"].live = false;  // not heard from lately
    return s;
}

TEST(ProgressText, BeforeTheTotalIsKnownShowsWhatWasReadSoFar) {
    EXPECT_EQ(progress_text(batch_under_way(), 12.5, 200, false),
              "250/400+ done, 3 failed, ETA -, 12.5/s, 2 workers");
}

TEST(ProgressText, WithATotalShowsThePercentageAndTheEta) {
    StatsSnapshot s = batch_under_way();
    s.total = 1000;
    EXPECT_EQ(progress_text(s, 250, 200, false),
              "250/1000 (25%) done, 3 failed, ETA 0:03, 250/s, 2 workers");
}

TEST(ProgressText, AnInputFileSizeStandsInForTheTotalUntilTheEnd) {
    StatsSnapshot s = batch_under_way();
    s.expected = 500;
    EXPECT_EQ(progress_text(s, -1, 200, false),
              "250/500 (50%) done, 3 failed, ETA -, -/s, 2 workers");
}

TEST(ProgressText, ANarrowTerminalDropsWholePartsFromTheEnd) {
    StatsSnapshot s = batch_under_way();
    s.total = 1000;
    for (std::size_t width = 1; width <= 120; ++width) {
        const std::string text = progress_text(s, 250, width, true);
        EXPECT_LE(text.size(), width);
        EXPECT_NE(text.back(), ',') << text;
    }
    EXPECT_EQ(progress_text(s, 250, 40, true), "250/1000 (25%) done, 3 failed, ETA 0:03");
    EXPECT_EQ(progress_text(s, 250, 30, true), "250/1000 (25%) done, 3 failed");
}

TEST(ProgressText, AWideTerminalGetsABar) {
    StatsSnapshot s = batch_under_way();
    s.total = 1000;
    const std::string text = progress_text(s, 250, 120, true);
    EXPECT_EQ(text.substr(0, 12), "[##########.") << text;
    EXPECT_NE(text.find("] 250/1000 (25%) done"), std::string::npos) << text;
    EXPECT_EQ(progress_text(s, 250, 120, false).front(), '2');
}

}  // namespace
}  // namespace taskpipe
