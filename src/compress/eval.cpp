#include "compress/eval.h"

#include <nlohmann/json.hpp>

#include "engine/generator.h"
#include "model/kv_cache.h"
#include "sample/sampler.h"

namespace frugal {

const char* match_kind_name(MatchKind k) {
  switch (k) {
    case MatchKind::kExact: return "exact";
    case MatchKind::kContains: return "contains";
    case MatchKind::kRegex: return "regex";
  }
  return "?";
}

namespace {

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

Status parse_task_line(const nlohmann::json& j, const std::string& where, int64_t line, EvalTask* t) {
  if (!j.is_object()) return invalid_argument(where + ": expected a JSON object");
  t->line = line;
  for (const char* key : {"prompt", "expected"}) {
    if (!j.contains(key)) return invalid_argument(where + ": missing \"" + key + "\"");
    if (!j[key].is_string()) return invalid_argument(where + ": \"" + key + "\" must be a string");
  }
  t->prompt = j["prompt"].get<std::string>();
  t->expected = j["expected"].get<std::string>();
  t->id = "line " + std::to_string(line);
  if (j.contains("id")) {
    if (j["id"].is_string()) {
      t->id = j["id"].get<std::string>();
    } else if (j["id"].is_number()) {
      t->id = j["id"].dump();
    } else {
      return invalid_argument(where + ": \"id\" must be a string or a number");
    }
  }
  std::string match = "exact";
  if (j.contains("match")) {
    if (!j["match"].is_string()) return invalid_argument(where + ": \"match\" must be a string");
    match = j["match"].get<std::string>();
  }
  if (match == "exact") {
    t->match = MatchKind::kExact;
  } else if (match == "contains") {
    t->match = MatchKind::kContains;
  } else if (match == "regex") {
    t->match = MatchKind::kRegex;
    try {
      t->regex = std::make_shared<const std::regex>(t->expected, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return invalid_argument(where + ": bad regular expression \"" + t->expected + "\": " + e.what());
    }
  } else {
    return invalid_argument(where + ": \"match\" must be exact, contains or regex, got \"" + match + "\"");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::vector<EvalTask>> parse_eval_tasks(std::string_view text, const std::string& source) {
  std::vector<EvalTask> tasks;
  int64_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    const std::string_view body = trim(line);
    if (body.empty() || body[0] == '#') continue;
    const std::string where = source + ":" + std::to_string(line_no);
    nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return invalid_argument(where + ": not valid JSON: " + std::string(body.substr(0, 80)));
    EvalTask t;
    FRUGAL_RETURN_IF_ERROR(parse_task_line(j, where, line_no, &t));
    tasks.push_back(std::move(t));
  }
  if (tasks.empty()) return invalid_argument(source + ": no tasks (expected one JSON object per line)");
  return tasks;
}

bool eval_match(const EvalTask& task, std::string_view output) {
  switch (task.match) {
    case MatchKind::kExact: return trim(output) == trim(task.expected);
    case MatchKind::kContains: return output.find(task.expected) != std::string_view::npos;
    case MatchKind::kRegex: {
      const std::string s(output);
      return task.regex && std::regex_search(s, *task.regex);
    }
  }
  return false;
}

namespace {

StatusOr<EvalOutcome> run_task(Model& model, const Tokenizer& tokenizer, Backend& backend, const EvalTask& task,
                               const EvalOptions& o, const PromptEncoder& encode) {
  EvalOutcome out;
  out.id = task.id;
  StatusOr<std::vector<int32_t>> ids = encode(task.prompt);
  if (!ids.ok()) return ids.status().with_context("task " + task.id);
  if (ids->empty()) return invalid_argument("task " + task.id + ": the prompt has no tokens");
  out.n_prompt = (int64_t)ids->size();
  KvCache kv(model.config(), out.n_prompt + o.max_tokens, DType::F32);
  Generator gen(model, tokenizer, backend, kv, GeneratorOptions{o.n_batch});
  SamplingParams sp;
  sp.temperature = 0;
  Sampler sampler(sp, model.config().n_vocab);
  bool newline_stop = false;
  auto on_text = [&](const std::string& text) {
    if (!o.stop_at_newline) {
      out.output += text;
      return true;
    }
    for (char c : text) {
      if (c == '\n' && !trim(out.output).empty()) {
        newline_stop = true;
        return false;
      }
      out.output += c;
    }
    return true;
  };
  StatusOr<GenerationResult> r = gen.generate(*ids, o.max_tokens, sampler, on_text);
  if (!r.ok()) return r.status().with_context("task " + task.id);
  out.n_generated = (int64_t)r->tokens.size();
  switch (r->stop) {
    case StopReason::kEog: out.stop = "eog"; break;
    case StopReason::kMaxTokens: out.stop = "max_tokens"; break;
    case StopReason::kContextFull: out.stop = "context_full"; break;
    case StopReason::kCallback: out.stop = newline_stop ? "newline" : "callback"; break;
  }
  out.pass = eval_match(task, out.output);
  return out;
}

}  // namespace

StatusOr<EvalReport> run_eval(Model& model, const Tokenizer& tokenizer, Backend& backend,
                              const std::vector<EvalTask>& tasks, const EvalOptions& options,
                              const PromptEncoder& encode, const EvalProgress& progress) {
  if (options.max_tokens <= 0) return invalid_argument("max tokens must be > 0");
  if (options.n_batch <= 0) return invalid_argument("batch size must be > 0");
  FRUGAL_RETURN_IF_ERROR(KvCache::supports(model.config(), DType::F32));
  EvalReport report;
  for (const EvalTask& task : tasks) {
    FRUGAL_ASSIGN_OR_RETURN(EvalOutcome o, run_task(model, tokenizer, backend, task, options, encode));
    report.n_pass += o.pass ? 1 : 0;
    report.outcomes.push_back(std::move(o));
    if (progress) progress(task, report.outcomes.back());
  }
  return report;
}

std::string eval_report_json(const std::vector<EvalTask>& tasks, const EvalReport& report) {
  nlohmann::ordered_json j;
  j["n_tasks"] = report.outcomes.size();
  j["n_pass"] = report.n_pass;
  j["accuracy"] = report.accuracy();
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (size_t i = 0; i < report.outcomes.size(); ++i) {
    const EvalOutcome& o = report.outcomes[i];
    nlohmann::ordered_json r;
    r["id"] = o.id;
    r["pass"] = o.pass;
    r["output"] = o.output;
    if (i < tasks.size()) {
      r["expected"] = tasks[i].expected;
      r["match"] = match_kind_name(tasks[i].match);
    }
    r["n_prompt"] = o.n_prompt;
    r["n_generated"] = o.n_generated;
    r["stop"] = o.stop;
    results.push_back(std::move(r));
  }
  j["results"] = std::move(results);
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace frugal
