// Task-file parsing, the three match rules, and greedy evaluation of stories260K on the shipped example.
#include "compress/eval.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/thread_pool.h"

namespace frugal {
namespace {

TEST(EvalParse, ReadsTasksSkippingBlankAndCommentLines) {
  const std::string text =
      "# comment\n"
      "{\"id\": \"a\", \"prompt\": \"P1\", \"expected\": \"E1\", \"match\": \"contains\"}\n"
      "\n"
      "{\"prompt\": \"P2\", \"expected\": \"E2\"}\n"
      "  {\"id\": 7, \"prompt\": \"P3\", \"expected\": \"^x+$\", \"match\": \"regex\", \"extra\": 1}  \n";
  auto t = parse_eval_tasks(text, "t.jsonl");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->size(), 3u);
  EXPECT_EQ((*t)[0].id, "a");
  EXPECT_EQ((*t)[0].match, MatchKind::kContains);
  EXPECT_EQ((*t)[0].line, 2);
  EXPECT_EQ((*t)[1].id, "line 4");
  EXPECT_EQ((*t)[1].match, MatchKind::kExact);
  EXPECT_EQ((*t)[1].prompt, "P2");
  EXPECT_EQ((*t)[2].id, "7");
  EXPECT_EQ((*t)[2].match, MatchKind::kRegex);
  ASSERT_TRUE((*t)[2].regex);
}

std::string parse_error(const std::string& text) {
  auto t = parse_eval_tasks(text, "tasks.jsonl");
  return t.ok() ? "" : t.status().message();
}

TEST(EvalParse, ErrorsNameTheLine) {
  const std::string good = "{\"prompt\": \"p\", \"expected\": \"e\"}\n";
  EXPECT_NE(parse_error(good + good + "{\"prompt\": \"p\", \"expected\": }\n").find("tasks.jsonl:3: not valid JSON"),
            std::string::npos);
  EXPECT_NE(parse_error(good + "{\"expected\": \"e\"}").find("tasks.jsonl:2: missing \"prompt\""), std::string::npos);
  EXPECT_NE(parse_error("{\"prompt\": \"p\"}").find("tasks.jsonl:1: missing \"expected\""), std::string::npos);
  EXPECT_NE(parse_error("{\"prompt\": 3, \"expected\": \"e\"}").find(":1: \"prompt\" must be a string"),
            std::string::npos);
  EXPECT_NE(parse_error("{\"prompt\": \"p\", \"expected\": \"e\", \"match\": \"fuzzy\"}")
                .find(":1: \"match\" must be exact, contains or regex, got \"fuzzy\""),
            std::string::npos);
  EXPECT_NE(parse_error("{\"prompt\": \"p\", \"expected\": \"(unclosed\", \"match\": \"regex\"}")
                .find(":1: bad regular expression"),
            std::string::npos);
  EXPECT_NE(parse_error("[1, 2]").find(":1: expected a JSON object"), std::string::npos);
  EXPECT_NE(parse_error("\n# only a comment\n").find("no tasks"), std::string::npos);
}

EvalTask task(const std::string& expected, MatchKind m) {
  std::string text = "{\"prompt\": \"p\", \"expected\": " + nlohmann::json(expected).dump() + ", \"match\": \"" +
                     match_kind_name(m) + "\"}";
  auto t = parse_eval_tasks(text, "x");
  EXPECT_TRUE(t.ok()) << t.status().message();
  return t.ok() ? (*t)[0] : EvalTask{};
}

TEST(EvalMatch, ExactContainsRegex) {
  const EvalTask exact = task("Lily", MatchKind::kExact);
  EXPECT_TRUE(eval_match(exact, "Lily"));
  EXPECT_TRUE(eval_match(exact, "  Lily\n"));  // surrounding white space ignored
  EXPECT_FALSE(eval_match(exact, "Lily."));
  EXPECT_FALSE(eval_match(exact, "lily"));
  const EvalTask contains = task("Lily", MatchKind::kContains);
  EXPECT_TRUE(eval_match(contains, "a girl named Lily."));
  EXPECT_FALSE(eval_match(contains, "a girl named Tim."));
  const EvalTask regex = task("named (Lily|Tim)\\b", MatchKind::kRegex);
  EXPECT_TRUE(eval_match(regex, "a boy named Tim."));
  EXPECT_FALSE(eval_match(regex, "a boy named Timothy."));
  const EvalTask anchored = task("^[0-9]+$", MatchKind::kRegex);
  EXPECT_TRUE(eval_match(anchored, "42"));
  EXPECT_FALSE(eval_match(anchored, "42 apples"));
}

TEST(EvalRun, Stories260KPartlyPassesTheExampleFile) {
  std::ifstream in(std::string(FRUGAL_SOURCE_DIR) + "/tests/data/eval_example.jsonl");
  ASSERT_TRUE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  auto tasks = parse_eval_tasks(ss.str(), "eval_example.jsonl");
  ASSERT_TRUE(tasks.ok()) << tasks.status().message();
  auto m = Model::load(std::string(FRUGAL_SHARED_DIR) + "/models/stories260K.gguf");
  ASSERT_TRUE(m.ok());
  auto tok = Tokenizer::from_gguf((*m)->gguf());
  ASSERT_TRUE(tok.ok());
  ThreadPool pool(2);
  auto backend = make_cpu_backend(&pool, detect_isa());
  PromptEncoder enc = [&](const std::string& p) -> StatusOr<std::vector<int32_t>> {
    return (*tok)->encode(p, true, false);
  };
  EvalOptions o;
  auto r = run_eval(**m, **tok, *backend, *tasks, o, enc);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->outcomes.size(), tasks->size());
  EXPECT_GT(r->n_pass, 0);
  EXPECT_LT(r->n_pass, (int64_t)tasks->size());
  // "Once upon a time" continues with llama.cpp's greedy text (shared/models/README.md, Reference 1).
  EXPECT_EQ(r->outcomes[0].id, "lily");
  EXPECT_TRUE(r->outcomes[0].pass) << r->outcomes[0].output;
  EXPECT_EQ(r->outcomes[0].output.rfind(", there was a little girl named Lily.", 0), 0u) << r->outcomes[0].output;
  for (const EvalOutcome& o2 : r->outcomes) {
    EXPECT_EQ(o2.output.find('\n'), std::string::npos) << o2.id;  // stopped at the newline
    EXPECT_LE(o2.n_generated, o.max_tokens);
  }
  const std::string js = eval_report_json(*tasks, *r);
  auto j = nlohmann::json::parse(js);
  EXPECT_EQ(j["n_tasks"], tasks->size());
  EXPECT_EQ(j["n_pass"], r->n_pass);
  EXPECT_EQ(j["results"][0]["id"], "lily");
  EXPECT_EQ(j["results"][0]["match"], "contains");
  // Same run twice: identical outputs (greedy, deterministic).
  auto r2 = run_eval(**m, **tok, *backend, *tasks, o, enc);
  ASSERT_TRUE(r2.ok());
  for (size_t i = 0; i < r->outcomes.size(); ++i) EXPECT_EQ(r->outcomes[i].output, r2->outcomes[i].output);
}

}  // namespace
}  // namespace frugal
