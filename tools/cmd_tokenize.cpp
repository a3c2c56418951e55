// frugal tokenize: text -> token ids with the model's vocabulary. Reads only the GGUF metadata (works on
// vocab-only files; no weights are loaded).
#include <cstdio>
#include <memory>

#include "cli_common.h"
#include "tokenizer/tokenizer.h"

namespace frugal::cli {

namespace {

struct TokenizeOptions {
  std::string model;
  std::string prompt;
  std::string file;
  bool ids = false;
  bool no_bos = false;
  bool parse_special = false;
};

Status tokenize(const TokenizeOptions& o) {
  if (!o.prompt.empty() && !o.file.empty()) return invalid_argument("give the text with -p or -f, not both");
  std::string text = o.prompt;
  if (!o.file.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(text, read_text_file(o.file));
  }
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> f, GgufFile::open(o.model));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::from_gguf(*f));
  const std::vector<int32_t> ids = tok->encode(text, /*add_special=*/!o.no_bos, o.parse_special);
  if (o.ids) {
    std::string line = "[";
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) line += ", ";
      line += std::to_string(ids[i]);
    }
    std::printf("%s]\n", line.c_str());
    return Status::Ok();
  }
  for (int32_t id : ids) {
    std::printf("%d\t%s\n", id, escape_text(tok->token_to_piece(id, /*render_special=*/true), /*quotes=*/false).c_str());
  }
  return Status::Ok();
}

}  // namespace

Command add_tokenize_command(CLI::App& root) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* app = root.add_subcommand("tokenize", "Tokenize text with a model's vocabulary (vocab-only files work)");
  app->add_option("-m,--model", o->model, "GGUF file (model or vocab-only)")->required();
  app->add_option("-p,--prompt", o->prompt, "text to tokenize");
  app->add_option("-f,--file", o->file, "read the text from this file");
  app->add_flag("--ids", o->ids, "print the ids as one JSON array on one line");
  app->add_flag("--no-bos", o->no_bos, "do not add BOS/EOS even if the vocabulary asks for them");
  app->add_flag("--parse-special", o->parse_special, "treat special-token text (e.g. <s>) as special tokens");
  return Command{app, [o] { return tokenize(*o); }};
}

}  // namespace frugal::cli
