// frugal eval: greedy answers to a JSON Lines task file, scored exact / contains / regex (format in
// compress/eval.h and README). Prints one line per task and the accuracy; --json writes the full report.
#include <cstdio>
#include <memory>

#include "chat/chat_template.h"
#include "cli_common.h"
#include "compress/eval.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace frugal::cli {

namespace {

struct EvalCliOptions {
  std::string model;
  std::string tasks;
  bool chat = false;
  int64_t max_tokens = 32;
  bool no_newline_stop = false;
  std::string json;
  int threads = 0;
  std::string isa = "auto";
};

StatusOr<PromptEncoder> make_encoder(const EvalCliOptions& o, const Model& model, const Tokenizer& tok) {
  if (!o.chat) {
    return PromptEncoder([&tok](const std::string& prompt) -> StatusOr<std::vector<int32_t>> {
      return tok.encode(prompt, /*add_special=*/true, /*parse_special=*/false);
    });
  }
  FRUGAL_ASSIGN_OR_RETURN(std::string src, model.gguf().get_string("tokenizer.chat_template", ""));
  auto has_token = [&tok](const std::string& text) { return tok.token_id(text) != Tokenizer::kNoToken; };
  std::string chosen;
  StatusOr<ChatTemplate> t = template_for_model(src, has_token, &chosen);
  if (!t.ok()) return t.status().with_context(o.model + ": tokenizer.chat_template");
  std::fprintf(stderr, "frugal eval: chat template: %s\n", chosen.c_str());
  auto tmpl = std::make_shared<const ChatTemplate>(std::move(t).value());
  const std::string bos = tok.bos() != Tokenizer::kNoToken ? tok.token_text(tok.bos()) : "";
  const std::string eos = tok.eos() != Tokenizer::kNoToken ? tok.token_text(tok.eos()) : "";
  return PromptEncoder([tmpl, bos, eos, &tok](const std::string& prompt) -> StatusOr<std::vector<int32_t>> {
    ChatTemplateInputs in;
    in.messages.push_back({{"role", "user"}, {"content", prompt}});
    in.bos_token = bos;
    in.eos_token = eos;
    FRUGAL_ASSIGN_OR_RETURN(std::string text, tmpl->apply(in));
    return tok.encode(text, /*add_special=*/!starts_with_bos(text, bos), /*parse_special=*/true);
  });
}

Status eval(const EvalCliOptions& o) {
  FRUGAL_ASSIGN_OR_RETURN(std::string text, read_text_file(o.tasks));
  FRUGAL_ASSIGN_OR_RETURN(std::vector<EvalTask> tasks, parse_eval_tasks(text, o.tasks));
  FRUGAL_ASSIGN_OR_RETURN(Runtime rt, make_runtime(o.threads, o.isa));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::load(o.model));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::from_gguf(model->gguf()));
  FRUGAL_ASSIGN_OR_RETURN(PromptEncoder encode, make_encoder(o, *model, *tok));
  EvalOptions eo;
  eo.max_tokens = o.max_tokens;
  eo.stop_at_newline = !o.no_newline_stop;
  std::fprintf(stderr, "frugal eval: %s: %zu tasks, greedy, at most %lld tokens each%s\n", o.model.c_str(),
               tasks.size(), (long long)eo.max_tokens, eo.stop_at_newline ? ", stop at newline" : "");
  auto progress = [](const EvalTask& t, const EvalOutcome& r) {
    std::printf("%s  %-16s %-8s expected %s  got %s\n", r.pass ? "PASS" : "FAIL", t.id.c_str(),
                match_kind_name(t.match), escape_text(t.expected, true, 60).c_str(),
                escape_text(r.output, true, 80).c_str());
    std::fflush(stdout);
  };
  FRUGAL_ASSIGN_OR_RETURN(EvalReport report, run_eval(*model, *tok, *rt.backend, tasks, eo, encode, progress));
  std::printf("accuracy: %lld/%zu = %.1f%%\n", (long long)report.n_pass, report.outcomes.size(),
              100.0 * report.accuracy());
  if (!o.json.empty()) {
    const std::string js = eval_report_json(tasks, report) + "\n";
    FILE* f = o.json == "-" ? stdout : std::fopen(o.json.c_str(), "wb");
    if (!f) return io_error(o.json + ": cannot create");
    const bool ok = std::fwrite(js.data(), 1, js.size(), f) == js.size();
    if (f != stdout && std::fclose(f) != 0) return io_error(o.json + ": write failed");
    if (!ok) return io_error(o.json + ": write failed");
  }
  return Status::Ok();
}

}  // namespace

Command add_eval_command(CLI::App& root) {
  auto o = std::make_shared<EvalCliOptions>();
  CLI::App* app = root.add_subcommand(
      "eval", "Score greedy answers to a JSON Lines task file ({\"prompt\", \"expected\", \"match\": exact|contains|regex})");
  app->add_option("-m,--model", o->model, "GGUF model file")->required();
  app->add_option("--tasks", o->tasks, "task file, one JSON object per line")->required();
  app->add_flag("--chat", o->chat, "wrap each prompt in the model's chat template as a user message");
  app->add_option("-n,--max-tokens", o->max_tokens, "tokens generated per task at most")->capture_default_str();
  app->add_flag("--no-newline-stop", o->no_newline_stop,
                "do not stop at the first newline after non-blank output (default: stop there)");
  app->add_option("--json", o->json, "write the report as JSON to FILE ('-': stdout)");
  app->add_option("-t,--threads", o->threads, "threads (default: number of cores)");
  app->add_option("--isa", o->isa, "kernels: scalar, avx2, avx512 or auto")->capture_default_str();
  return Command{app, [o] { return eval(*o); }};
}

}  // namespace frugal::cli
