// frugal: one binary, subcommands (run, bench, inspect, tokenize, logits, synth, batched-bench, usage, serve,
// quantize, imatrix, perplexity, eval, prune, convert).
// Each subcommand lives in its own file (cmd_*.cpp) and returns a Status: an error is printed as
// "frugal <command>: error: <message>" and the exit code is 1. --help on anything exits 0.
#include <cstdio>
#include <exception>
#include <vector>

#include "cli_common.h"

int main(int argc, char** argv) {
  using namespace frugal;
  CLI::App app{
      "frugal: LLM inference on CPUs for GGUF models (llama, qwen2), with runtime-selected AVX2/AVX-512 kernels.\n"
      "Run `frugal <command> --help` for a command's options."};
  app.name("frugal");
  app.require_subcommand(1);
  std::vector<cli::Command> commands = {
      cli::add_run_command(app),    cli::add_bench_command(app),  cli::add_inspect_command(app),
      cli::add_tokenize_command(app), cli::add_logits_command(app), cli::add_synth_command(app),
      cli::add_batched_bench_command(app), cli::add_usage_command(app), cli::add_serve_command(app),
      cli::add_quantize_command(app), cli::add_imatrix_command(app),
      cli::add_perplexity_command(app), cli::add_eval_command(app), cli::add_prune_command(app),
      cli::add_convert_command(app),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }
  for (const cli::Command& c : commands) {
    if (!c.app->parsed()) continue;
    const std::string name = c.app->get_name();
    try {
      const Status s = c.run();
      if (!s.ok()) {
        std::fflush(stdout);
        std::fprintf(stderr, "frugal %s: error: %s\n", name.c_str(), s.message().c_str());
        return 1;
      }
    } catch (const std::exception& e) {
      std::fflush(stdout);
      std::fprintf(stderr, "frugal %s: error: %s\n", name.c_str(), e.what());
      return 1;
    }
    return 0;
  }
  return 1;
}
