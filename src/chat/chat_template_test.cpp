// The reference check: every chat template in llama.cpp's models/templates rendered by our interpreter must be
// byte-equal to Hugging Face's reference implementation (npm @huggingface/jinja, run by
// scripts/chat/render-reference.mjs), or fail where the reference fails. Plus tests of the ChatTemplate API.
//
// Inputs: node (PATH), tests/js/node_modules (scripts/install-js-deps.sh), the templates in
// $FRUGAL_LLAMACPP_DIR/src/models/templates (default ~/.cache/frugal/llamacpp; scripts/llamacpp/fetch-source.sh).
// When one is missing the check fails if $CI is set and is skipped otherwise.
#include "chat/chat_template.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include <unistd.h>

namespace frugal {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

// Templates whose output differs from the reference, with the reason. Keep it short: every other template
// in the directory must match (or fail where the reference fails) in every case.
const std::map<std::string, std::string> kKnownUnsupported = {};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path templates_dir() {
  const char* dir = std::getenv("FRUGAL_LLAMACPP_DIR");
  const char* home = std::getenv("HOME");
  fs::path base = dir ? fs::path(dir) : fs::path(home ? home : "/root") / ".cache/frugal/llamacpp";
  return base / "src/models/templates";
}

// "" when the reference can run, else what is missing.
std::string missing_inputs() {
  if (std::system("node --version > /dev/null 2>&1") != 0) return "node is not on PATH";
  fs::path jinja = fs::path(FRUGAL_SOURCE_DIR) / "tests/js/node_modules/@huggingface/jinja";
  if (!fs::exists(jinja)) return jinja.string() + " is missing (run scripts/install-js-deps.sh)";
  if (!fs::is_directory(templates_dir()))
    return templates_dir().string() + " is missing (run scripts/llamacpp/fetch-source.sh)";
  return "";
}

// A JSON string literal of possibly cut UTF-8 (invalid bytes replaced), for failure messages.
std::string quoted(const std::string& s) {
  return ojson(s).dump(-1, ' ', false, ojson::error_handler_t::replace);
}

// First difference, for readable failures.
std::string describe_difference(const std::string& want, const std::string& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  auto around = [&](const std::string& s) { return quoted(s.substr(i < 40 ? 0 : i - 40, 80)); };
  return "first difference at byte " + std::to_string(i) + "\n  reference: " + around(want) + "\n  frugal:    " +
         around(got);
}

class ReferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    missing_ = missing_inputs();
    if (missing_.empty()) return;
    if (std::getenv("CI") != nullptr) FAIL() << missing_;
    GTEST_SKIP() << missing_;
  }

  // Runs the reference renderer once per process (only the tests that need it pay for node).
  static const ojson& reference() {
    static const ojson kReference = [] {
      fs::path out = fs::path(::testing::TempDir()) / ("chat_reference_" + std::to_string(::getpid()) + ".json");
      std::string cmd = "node \"" + std::string(FRUGAL_SOURCE_DIR) + "/scripts/chat/render-reference.mjs\" \"" +
                        templates_dir().string() + "\" \"" + out.string() + "\"";
      if (std::system(cmd.c_str()) != 0) return ojson();
      ojson parsed = ojson::parse(read_file(out));
      fs::remove(out);
      return parsed;
    }();
    return kReference;
  }

  static ChatTemplateInputs inputs(const ojson& c) {
    ChatTemplateInputs in;
    in.messages = c["messages"];
    in.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    in.bos_token = reference()["bos_token"].get<std::string>();
    in.eos_token = reference()["eos_token"].get<std::string>();
    in.tools = c["tools"];
    in.extra_context = c["extra_context"];
    in.now_unix = reference()["now_unix"].get<int64_t>();
    return in;
  }

  // Failures of one template, one line per case ("" when all cases agree).
  static std::string check_template(const std::string& file, int* matched) {
    std::string source = read_file(templates_dir() / file);
    auto parsed = ChatTemplate::parse(source);
    std::string failures;
    for (const ojson& c : reference()["cases"]) {
      const std::string name = c["name"].get<std::string>();
      const ojson& want = reference()["results"][file][name];
      StatusOr<std::string> got = parsed.ok() ? parsed->apply(inputs(c)) : StatusOr<std::string>(parsed.status());
      if (want.contains("error")) {
        if (got.ok()) {
          failures += "  " + name + ": the reference failed (" + want["error"].get<std::string>() +
                      ") but frugal rendered " + quoted(got->substr(0, 200)) + "\n";
        } else {
          ++*matched;
        }
      } else if (!got.ok()) {
        failures += "  " + name + ": frugal failed: " + got.status().message() + "\n";
      } else if (*got != want["output"].get<std::string>()) {
        failures += "  " + name + ": " + describe_difference(want["output"].get<std::string>(), *got) + "\n";
      } else {
        ++*matched;
      }
    }
    return failures;
  }

  std::string missing_;
};

TEST_F(ReferenceTest, EveryTemplateMatchesHuggingFaceJinja) {
  ASSERT_TRUE(reference().contains("results")) << "scripts/chat/render-reference.mjs failed";
  int templates = 0, matched = 0, errors = 0;
  for (const auto& [file, cases] : reference()["results"].items()) {
    ++templates;
    for (const auto& [name, r] : cases.items()) errors += r.contains("error");
    std::string failures = check_template(file, &matched);
    if (kKnownUnsupported.count(file)) continue;
    EXPECT_TRUE(failures.empty()) << file << ":\n" << failures;
  }
  EXPECT_GE(templates, 60) << "expected llama.cpp's ~68 templates";
  std::printf("[ reference ] %d templates, %d renders equal (%d of them errors on both sides), %s\n", templates,
              matched, errors, reference()["generator"].get<std::string>().c_str());
}

TEST_F(ReferenceTest, KnownUnsupportedTemplatesStillDiffer) {
  if (kKnownUnsupported.empty()) return;  // nothing to check; do not run the reference
  for (const auto& [file, reason] : kKnownUnsupported) {
    int matched = 0;
    EXPECT_FALSE(check_template(file, &matched).empty()) << file << " now matches; remove it from the list";
  }
}

// The templates the brief requires to match must be in the directory (a renamed file would silently drop out).
TEST_F(ReferenceTest, RequiredFamiliesArePresent) {
  std::set<std::string> prefixes = {"deepseek", "Qwen", "meta-llama-Llama-3", "Mistral", "mistralai",
                                    "microsoft-Phi", "google-gemma", "ibm-granite", "meetkai-functionary",
                                    "NousResearch-Hermes"};
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(templates_dir()))
    if (entry.path().extension() == ".jinja") files.push_back(entry.path().filename().string());
  for (const std::string& prefix : prefixes) {
    bool found = false;
    for (const std::string& file : files) {
      if (file.rfind(prefix, 0) != 0) continue;
      found = true;
      EXPECT_EQ(kKnownUnsupported.count(file), 0u) << file << " must match the reference";
    }
    EXPECT_TRUE(found) << "no template starting with " << prefix;
  }
}

}  // namespace
}  // namespace frugal
