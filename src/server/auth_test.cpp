#include "server/auth.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace frugal {
namespace {

constexpr const char* kFile = R"(# keys for the test
sk-alpha
sk-beta name=bob rpm=10 tpm=5000 concurrent=2   # trailing comment

  sk-g#amma name=carol:ops@x rpm=0
)";

TEST(ApiKeys, ParsesKeysNamesLimitsAndComments) {
  StatusOr<ApiKeys> keys = ApiKeys::parse(kFile, "keys.txt");
  ASSERT_TRUE(keys.ok()) << keys.status().message();
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_TRUE(keys->enabled());
  const ApiKey& a = keys->keys()[0];
  EXPECT_EQ(a.key, "sk-alpha");
  EXPECT_EQ(a.name, "key-2179e632");  // "key-" + sha256("sk-alpha")[:8]
  EXPECT_TRUE(a.limits.unlimited());
  const ApiKey& b = keys->keys()[1];
  EXPECT_EQ(b.name, "bob");
  EXPECT_EQ(b.limits.requests_per_minute, 10);
  EXPECT_EQ(b.limits.tokens_per_minute, 5000);
  EXPECT_EQ(b.limits.max_concurrent, 2);
  const ApiKey& c = keys->keys()[2];
  EXPECT_EQ(c.key, "sk-g#amma");  // '#' inside a key is not a comment
  EXPECT_EQ(c.name, "carol:ops@x");
  EXPECT_EQ(keys->find_by_name("bob"), &b);
  EXPECT_EQ(keys->find_by_name("nobody"), nullptr);
}

void expect_error(const std::string& text, const std::string& where, const std::string& what) {
  StatusOr<ApiKeys> keys = ApiKeys::parse(text, "k.txt");
  ASSERT_FALSE(keys.ok()) << text;
  EXPECT_EQ(keys.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(keys.status().message().find(where), std::string::npos) << keys.status().message();
  EXPECT_NE(keys.status().message().find(what), std::string::npos) << keys.status().message();
}

TEST(ApiKeys, FormatErrorsNameFileAndLine) {
  expect_error("a\nb colour=red\n", "k.txt:2", "unknown attribute 'colour'");
  expect_error("a\n\nb rpm=ten\n", "k.txt:3", "rpm=ten");
  expect_error("a rpm=-1\n", "k.txt:1", "non-negative");
  expect_error("a rpm=5x\n", "k.txt:1", "rpm=5x");
  expect_error("a name=\n", "k.txt:1", "empty name");
  expect_error("a name=b/c\n", "k.txt:1", "name 'b/c'");
  expect_error("a stray\n", "k.txt:1", "expected ATTR=VALUE");
  expect_error("a\r\nb\na\n", "k.txt:3", "duplicate API key");
  expect_error("a name=x\nb name=x\n", "k.txt:2", "duplicate key name 'x' (first on line 1)");
  expect_error("a\x01z\n", "k.txt:1", "control");
  expect_error("# only comments\n\n", "k.txt", "no API keys");
}

TEST(ApiKeys, ErrorsNeverContainTheKey) {
  StatusOr<ApiKeys> keys = ApiKeys::parse("secret-one\nsecret-one\n", "k.txt");
  ASSERT_FALSE(keys.ok());
  EXPECT_EQ(keys.status().message().find("secret-one"), std::string::npos) << keys.status().message();
}

TEST(ApiKeys, AuthenticateBearerHeader) {
  StatusOr<ApiKeys> keys = ApiKeys::parse(kFile, "keys.txt");
  ASSERT_TRUE(keys.ok());
  const ApiKey* bob = keys->find_by_name("bob");
  EXPECT_EQ(keys->authenticate("Bearer sk-beta"), bob);
  EXPECT_EQ(keys->authenticate("bearer sk-beta"), bob);
  EXPECT_EQ(keys->authenticate("  BEARER \t sk-beta  "), bob);
  EXPECT_EQ(keys->authenticate("Bearer sk-g#amma"), &keys->keys()[2]);
  EXPECT_EQ(keys->authenticate("Bearer sk-alpha"), &keys->keys()[0]);
  EXPECT_EQ(keys->authenticate("Bearer sk-bet"), nullptr);     // prefix
  EXPECT_EQ(keys->authenticate("Bearer sk-betaa"), nullptr);   // longer
  EXPECT_EQ(keys->authenticate("Bearer sk-Beta"), nullptr);    // keys are case-sensitive
  EXPECT_EQ(keys->authenticate("Basic sk-beta"), nullptr);
  EXPECT_EQ(keys->authenticate("Bearersk-beta"), nullptr);
  EXPECT_EQ(keys->authenticate("Bearer"), nullptr);
  EXPECT_EQ(keys->authenticate("Bearer "), nullptr);
  EXPECT_EQ(keys->authenticate(""), nullptr);
  EXPECT_EQ(keys->authenticate("sk-beta"), nullptr);
  EXPECT_EQ(keys->authenticate_key("sk-beta"), bob);
  EXPECT_EQ(keys->authenticate_key(""), nullptr);
}

TEST(ApiKeys, ManyKeysEveryOneFound) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "key-number-" + std::to_string(i) + " name=n" + std::to_string(i) + "\n";
  StatusOr<ApiKeys> keys = ApiKeys::parse(text, "many");
  ASSERT_TRUE(keys.ok()) << keys.status().message();
  for (int i = 0; i < 200; ++i) {
    const ApiKey* k = keys->authenticate("Bearer key-number-" + std::to_string(i));
    ASSERT_NE(k, nullptr) << i;
    EXPECT_EQ(k->name, "n" + std::to_string(i));
  }
  EXPECT_EQ(keys->authenticate("Bearer key-number-200"), nullptr);
}

TEST(ApiKeys, NoKeysMeansOpenAndNothingAuthenticates) {
  ApiKeys none;
  EXPECT_FALSE(none.enabled());
  EXPECT_EQ(none.authenticate("Bearer x"), nullptr);
}

TEST(ApiKeys, Single) {
  StatusOr<ApiKeys> k = ApiKeys::single("s3cret", KeyLimits{5, 0, 1});
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->keys()[0].name, "default");
  EXPECT_EQ(k->keys()[0].limits.requests_per_minute, 5);
  EXPECT_EQ(k->authenticate("Bearer s3cret"), &k->keys()[0]);
  EXPECT_FALSE(ApiKeys::single("").ok());
  EXPECT_FALSE(ApiKeys::single("has space").ok());
}

TEST(ApiKeys, LoadFile) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("frugal_auth_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "keys.txt").string();
  {
    std::ofstream f(path);
    f << "k1 name=one\nk2 bogus=1\n";
  }
  StatusOr<ApiKeys> bad = ApiKeys::load_file(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(path + ":2"), std::string::npos) << bad.status().message();
  {
    std::ofstream f(path);
    f << "k1 name=one\nk2 name=two\n";
  }
  StatusOr<ApiKeys> good = ApiKeys::load_file(path);
  ASSERT_TRUE(good.ok()) << good.status().message();
  EXPECT_EQ(good->authenticate("Bearer k2")->name, "two");
  StatusOr<ApiKeys> missing = ApiKeys::load_file((dir / "nope.txt").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.txt"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace frugal
