// Task-based evaluation: prompt -> greedy continuation -> compared with an expected answer.
//
// Task file: JSON Lines, one object per non-blank line:
//   {"id": "color", "prompt": "The sky is", "expected": "blue", "match": "contains"}
//   id        optional string or number (default: "line N")
//   prompt    string, required (fed as is; `frugal eval --chat` wraps it in the model's chat template)
//   expected  string, required
//   match     "exact" (default): the output with leading/trailing white space removed equals `expected`
//                                (also trimmed);
//             "contains": `expected` occurs in the output;
//             "regex": ECMAScript regular expression `expected` matches somewhere in the output
//                      (std::regex_search; anchor with ^...$ for a whole-output match).
// Lines starting with '#' are comments. Unknown keys are ignored. Parse errors name the file and line.
//
// Generation: greedy (arg-max), from an empty cache per task, stopping at an end-of-generation token,
// after max_tokens tokens, or (stop_at_newline) at the first '\n' that follows non-blank output; the
// output is the decoded text before that newline.
//
// Thread-safety: parse/match are pure; run_eval uses the borrowed model/backend from one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "base/status.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace frugal {

enum class MatchKind { kExact, kContains, kRegex };
const char* match_kind_name(MatchKind k);

struct EvalTask {
  std::string id;
  std::string prompt;
  std::string expected;
  MatchKind match = MatchKind::kExact;
  int64_t line = 0;                          // 1-based line in the task file
  std::shared_ptr<const std::regex> regex;  // compiled `expected` for kRegex
};

// Parses a whole task file. `source` names it in errors ("tasks.jsonl:3: ..."). An empty file (no tasks)
// is an error too.
StatusOr<std::vector<EvalTask>> parse_eval_tasks(std::string_view text, const std::string& source);

// Whether `output` passes `task` (see the match rules above).
bool eval_match(const EvalTask& task, std::string_view output);

struct EvalOptions {
  int64_t max_tokens = 32;      // generated tokens per task (> 0)
  bool stop_at_newline = true;  // see above
  int64_t n_batch = 512;        // prompt tokens per forward
};

struct EvalOutcome {
  std::string id;
  std::string output;  // generated text (before the stopping newline)
  bool pass = false;
  int64_t n_prompt = 0;
  int64_t n_generated = 0;
  std::string stop;  // "eog", "max_tokens", "newline", "context_full"
};

struct EvalReport {
  std::vector<EvalOutcome> outcomes;  // one per task, in order
  int64_t n_pass = 0;
  double accuracy() const { return outcomes.empty() ? 0.0 : (double)n_pass / (double)outcomes.size(); }
};

// Turns a task prompt into token ids (plain: tokenizer.encode(prompt, add_special = true); --chat: the
// chat template). Errors are returned to the caller of run_eval with the task id added.
using PromptEncoder = std::function<StatusOr<std::vector<int32_t>>(const std::string& prompt)>;
// Called after each task (progress / streaming output).
using EvalProgress = std::function<void(const EvalTask& task, const EvalOutcome& outcome)>;

StatusOr<EvalReport> run_eval(Model& model, const Tokenizer& tokenizer, Backend& backend,
                              const std::vector<EvalTask>& tasks, const EvalOptions& options,
                              const PromptEncoder& encode, const EvalProgress& progress = {});

// JSON rendering of a report: {"n_tasks", "n_pass", "accuracy", "results": [{"id", "pass", "output",
// "expected", "match", "n_prompt", "n_generated", "stop"}]}.
std::string eval_report_json(const std::vector<EvalTask>& tasks, const EvalReport& report);

}  // namespace frugal
