// Shared helpers for the tokenizer tests: cached vocabulary loading and llama.cpp's .inp/.out vectors.
#pragma once

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gguf/gguf_file.h"
#include "tokenizer/tokenizer.h"

namespace frugal::tok_test {

inline std::string shared_path(const std::string& rel) { return std::string(FRUGAL_SHARED_DIR) + "/" + rel; }

// Loads each vocabulary once per test binary. Aborts the test (nullptr) on failure.
inline const Tokenizer* load_vocab(const std::string& rel_path) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(rel_path);
  if (it != cache.end()) return it->second.get();
  auto f = GgufFile::open(shared_path(rel_path));
  if (!f.ok()) return nullptr;
  auto t = Tokenizer::from_gguf(**f);
  if (!t.ok()) return nullptr;
  return (cache[rel_path] = std::move(t).value()).get();
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;
};

// The .inp pieces split on "\n__ggml_vocab_test__\n" (a trailing separator adds no empty case) paired with
// the .out lines (ids separated by spaces). Returns empty on a count mismatch.
inline std::vector<VocabCase> read_vocab_cases(const std::string& gguf_rel) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  const std::string inp = read_file(shared_path(gguf_rel + ".inp"));
  const std::string outp = read_file(shared_path(gguf_rel + ".out"));
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<std::vector<int32_t>> ids;
  std::istringstream lines(outp);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream ls(line);
    std::vector<int32_t> row;
    for (long v; ls >> v;) row.push_back(static_cast<int32_t>(v));
    ids.push_back(std::move(row));
  }
  std::vector<VocabCase> cases;
  if (texts.size() != ids.size()) return cases;
  for (size_t i = 0; i < texts.size(); ++i) cases.push_back({texts[i], ids[i]});
  return cases;
}

inline std::string ids_string(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += (s.empty() ? "" : " ") + std::to_string(id);
  return s;
}

}  // namespace frugal::tok_test
