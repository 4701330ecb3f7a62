// The set of task ids that have a result (common/include/taskpipe/done_set.hpp).
//
// "The set is a prefix (every id up to prefix() is done) plus the few ids done out of order
// above it."

#include "taskpipe/done_set.hpp"

#include <gtest/gtest.h>

#include <cstdint>

namespace taskpipe {
namespace {

TEST(DoneSet, StartsEmpty) {
    const DoneSet done;
    EXPECT_EQ(done.size(), 0u);
    EXPECT_EQ(done.prefix(), 0u);
    EXPECT_FALSE(done.contains(1));
}

TEST(DoneSet, InsertReturnsTrueOnlyTheFirstTime) {
    DoneSet done;
    EXPECT_TRUE(done.insert(1));
    EXPECT_FALSE(done.insert(1));
    EXPECT_TRUE(done.insert(5));
    EXPECT_FALSE(done.insert(5));
    EXPECT_EQ(done.size(), 2u);
}

TEST(DoneSet, InOrderIdsGrowThePrefix) {
    DoneSet done;
    for (std::uint64_t id = 1; id <= 100; ++id) EXPECT_TRUE(done.insert(id));
    EXPECT_EQ(done.prefix(), 100u);
    EXPECT_EQ(done.size(), 100u);
    EXPECT_TRUE(done.contains(1));
    EXPECT_TRUE(done.contains(100));
    EXPECT_FALSE(done.contains(101));
}

TEST(DoneSet, OutOfOrderIdsJoinThePrefixWhenTheGapCloses) {
    DoneSet done;
    EXPECT_TRUE(done.insert(3));
    EXPECT_TRUE(done.insert(4));
    EXPECT_EQ(done.prefix(), 0u);
    EXPECT_TRUE(done.contains(3));
    EXPECT_FALSE(done.contains(2));

    EXPECT_TRUE(done.insert(1));
    EXPECT_EQ(done.prefix(), 1u);
    EXPECT_TRUE(done.insert(2));
    EXPECT_EQ(done.prefix(), 4u);
    EXPECT_EQ(done.size(), 4u);
}

TEST(DoneSet, DuplicatesBelowAndAboveThePrefixAreRefused) {
    DoneSet done;
    done.insert(1);
    done.insert(2);
    done.insert(10);
    EXPECT_FALSE(done.insert(1));   // inside the prefix
    EXPECT_FALSE(done.insert(10));  // above it
    EXPECT_EQ(done.size(), 3u);
    EXPECT_EQ(done.prefix(), 2u);
}

TEST(DoneSet, ReverseOrderEndsWithTheFullPrefix) {
    DoneSet done;
    for (std::uint64_t id = 1000; id >= 1; --id) EXPECT_TRUE(done.insert(id));
    EXPECT_EQ(done.prefix(), 1000u);
    EXPECT_EQ(done.size(), 1000u);
    for (std::uint64_t id = 1; id <= 1000; ++id) EXPECT_FALSE(done.insert(id));
    EXPECT_EQ(done.size(), 1000u);
}

}  // namespace
}  // namespace taskpipe
