#include "engine/stop_matcher.h"

#include <gtest/gtest.h>

namespace frugal {
namespace {

TEST(StopMatcher, NoStopsPassesEverythingThrough) {
  StopMatcher m({});
  EXPECT_EQ(m.push("abc"), "abc");
  EXPECT_EQ(m.push(""), "");
  EXPECT_EQ(m.flush(), "");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, HoldsAPossibleStartAndReleasesItWhenItIsNot) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.push("the EN"), "the ");
  EXPECT_EQ(m.push("X"), "ENX");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.push("E"), "");
  EXPECT_EQ(m.flush(), "E");
}

TEST(StopMatcher, FindsAStopStringSpanningPieces) {
  StopMatcher m({"\n\n", "END"});
  EXPECT_EQ(m.push("Hello\n"), "Hello");
  EXPECT_EQ(m.push("\nmore"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "\n\n");
  EXPECT_EQ(m.push("after"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, EarliestOccurrenceWins) {
  StopMatcher m({"cd", "b"});
  EXPECT_EQ(m.push("abcd"), "a");
  EXPECT_EQ(m.matched(), "b");
}

TEST(StopMatcher, StopAtTheVeryStartEmitsNothing) {
  StopMatcher m({"x"});
  EXPECT_EQ(m.push("xyz"), "");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, KeepsUtf8Whole) {
  StopMatcher m({"é!"});  // "é" is 2 bytes
  EXPECT_EQ(m.push("café"), "caf");
  EXPECT_EQ(m.push("?"), "é?");
}

TEST(StopMatcher, EmptyStopStringsAreIgnored) {
  StopMatcher m({"", "z"});
  EXPECT_EQ(m.push("abc"), "abc");
}

}  // namespace
}  // namespace frugal
