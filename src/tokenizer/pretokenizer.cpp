#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstdio>

namespace frugal {

namespace {

// llama.cpp's whitespace (Unicode White_Space), used for every `\s` / `\S` of the original patterns.
#define FRUGAL_WS "\\t\\n\\x0B\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
constexpr const char* kSpace = "[" FRUGAL_WS "]";
constexpr const char* kNotSpace = "[^" FRUGAL_WS "]";

// GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
std::string gpt2_pattern() {
  return std::string("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" FRUGAL_WS "\\p{L}\\p{N}]+|") + kSpace +
         "+(?!" + kNotSpace + ")";
}

// Llama-3 / Qwen2 family; `digits` is "{1,3}" (llama3) or "" (qwen2: single digits).
std::string llama3_pattern(const char* digits) {
  return std::string(
             "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}") +
         digits + "| ?[^" FRUGAL_WS "\\p{L}\\p{N}]+[\\r\\n]*|" + kSpace + "*[\\r\\n]+|" + kSpace + "+(?!" +
         kNotSpace + ")|" + kSpace + "+";
}

// DeepSeek-V3 pass 3. llama.cpp evaluates it on collapsed text where ASCII '~' is neither \p{P} nor \p{S}:
// '~' may therefore lead a letter run and never joins a punctuation run.
std::string deepseek_v3_pattern() {
  return std::string(
             "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|(?:[^\\r\\n\\p{L}\\p{P}\\p{S}]|~)?[\\p{L}\\p{M}]+"
             "| ?(?:(?!~)[\\p{P}\\p{S}])+[\\r\\n]*|") +
         kSpace + "*[\\r\\n]+|" + kSpace + "+(?!" + kNotSpace + ")|" + kSpace + "+";
}

// The cased-letter ranges of DeepSeek-LLM's pass 2, by code point (reference §4.3.2).
constexpr uint32_t kDeepseekLetters[][2] = {
    {0x41, 0x5A},       {0x61, 0x7A},       {0xB5, 0xB5},       {0xC0, 0xD6},       {0xD8, 0xF6},
    {0xF8, 0x1BA},      {0x1BC, 0x1BF},     {0x1C4, 0x293},     {0x295, 0x2AF},     {0x370, 0x373},
    {0x376, 0x377},     {0x37B, 0x37D},     {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},
    {0x38C, 0x38C},     {0x38E, 0x3A1},     {0x3A3, 0x3F5},     {0x3F7, 0x481},     {0x48A, 0x52F},
    {0x531, 0x556},     {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},   {0x1C90, 0x1CBA},
    {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},   {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},   {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},
    {0x1F5B, 0x1F5B},   {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},   {0x1FD6, 0x1FDB},
    {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},   {0x2102, 0x2102},   {0x2107, 0x2107},
    {0x210A, 0x2113},   {0x2115, 0x2115},   {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},
    {0x2128, 0x2128},   {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},   {0x2C7E, 0x2CE4},
    {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},   {0xA680, 0xA69B},   {0xA722, 0xA76F},
    {0xA771, 0xA787},   {0xA78B, 0xA78E},   {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},
    {0xFF21, 0xFF3A},   {0xFF41, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};

std::string deepseek_llm_letters_pattern() {
  std::string p = std::string(kSpace) + "?[";
  char buf[40];
  for (const auto& r : kDeepseekLetters) {
    if (r[0] == r[1]) {
      std::snprintf(buf, sizeof buf, "\\x{%X}", r[0]);
    } else {
      std::snprintf(buf, sizeof buf, "\\x{%X}-\\x{%X}", r[0], r[1]);
    }
    p += buf;
  }
  return p + "]+";
}

constexpr const char* kCjkHangul = "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+";

constexpr PreTypeInfo kPreTypes[] = {
    // name               kind                      clean  ignore_merges add_bos
    {"default", PreKind::kDefault, true, false, false},
    {"llama3", PreKind::kLlama3, true, true, true},
    {"llama-v3", PreKind::kLlama3, true, true, true},
    {"llama-bpe", PreKind::kLlama3, true, true, true},
    {"falcon3", PreKind::kLlama3, true, true, true},
    {"falcon-h1", PreKind::kLlama3, true, true, true},
    {"pixtral", PreKind::kLlama3, true, true, true},
    {"midm-2.0", PreKind::kLlama3, true, true, true},
    {"lfm2", PreKind::kLlama3, true, true, true},
    {"dbrx", PreKind::kLlama3, true, false, false},
    {"smaug-bpe", PreKind::kLlama3, true, false, false},
    {"deepseek-llm", PreKind::kDeepseekLlm, false, false, false},
    {"deepseek-coder", PreKind::kDeepseekCoder, false, false, false},
    {"deepseek-v3", PreKind::kDeepseekV3, false, false, false},
    {"hunyuan-dense", PreKind::kDeepseekV3, false, false, false},
    {"joyai-llm", PreKind::kDeepseekV3, false, false, false},
    {"qwen2", PreKind::kQwen2, false, false, false},
    {"deepseek-r1-qwen", PreKind::kQwen2, false, false, false},
    {"kormo", PreKind::kQwen2, false, false, false},
    {"hunyuan", PreKind::kQwen2, false, false, false},
    {"solar-open", PreKind::kQwen2, false, false, false},
    {"stablelm2", PreKind::kQwen2, true, false, false},
    {"megrez", PreKind::kQwen2, true, false, false},
    {"gpt-2", PreKind::kGpt2, true, false, false},
    {"phi-2", PreKind::kGpt2, true, false, false},
    {"gigachat", PreKind::kGpt2, true, false, false},
    {"mellum", PreKind::kGpt2, true, false, false},
    {"exaone4", PreKind::kGpt2, true, false, false},
    {"mpt", PreKind::kGpt2, true, false, false},
    {"olmo", PreKind::kGpt2, true, false, false},
    {"jais", PreKind::kGpt2, true, false, false},
    {"trillion", PreKind::kGpt2, false, false, false},
    {"starcoder", PreKind::kStarcoder, true, false, false},
    {"refact", PreKind::kStarcoder, true, false, false},
    {"codeshell", PreKind::kStarcoder, true, false, false},
    {"exaone", PreKind::kStarcoder, true, false, false},
    {"minerva-7b", PreKind::kStarcoder, true, false, false},
    {"command-r", PreKind::kStarcoder, false, false, false},
    {"smollm", PreKind::kStarcoder, false, false, false},
    {"falcon", PreKind::kFalcon, true, false, false},
};

}  // namespace

const PreTypeInfo* find_pre_type(std::string_view name) {
  for (const auto& p : kPreTypes) {
    if (name == p.name) return &p;
  }
  return nullptr;
}

std::string supported_pre_type_names() {
  std::string s;
  for (const auto& p : kPreTypes) {
    if (!s.empty()) s += ", ";
    s += p.name;
  }
  return s;
}

std::vector<std::string> pre_kind_patterns(PreKind kind) {
  switch (kind) {
    case PreKind::kDefault:
      return {"[\\p{P}\\$\\+<=>\\^~\\|]+", gpt2_pattern(), "\\p{N}+", "[0-9][0-9][0-9]"};
    case PreKind::kGpt2:
      return {gpt2_pattern()};
    case PreKind::kLlama3:
      return {llama3_pattern("{1,3}")};
    case PreKind::kQwen2:
      return {llama3_pattern("")};
    case PreKind::kDeepseekLlm:
      return {"[\\r\\n]",
              deepseek_llm_letters_pattern(),
              std::string(kSpace) + "?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
              std::string(kSpace) + "+$",
              kCjkHangul,
              "\\p{N}+"};
    case PreKind::kDeepseekCoder:
      return {"[\\r\\n]", std::string(kSpace) + "?\\p{L}+", std::string(kSpace) + "?\\p{P}+", kCjkHangul, "\\p{N}"};
    case PreKind::kDeepseekV3:
      return {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+", deepseek_v3_pattern()};
    case PreKind::kStarcoder:
      return {"\\p{N}", gpt2_pattern()};
    case PreKind::kFalcon:
      return {"[\\p{P}\\$\\+<=>\\^~\\|`]+", gpt2_pattern(), "[0-9][0-9][0-9]"};
  }
  return {};
}

struct PreTokenizer::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

PreTokenizer::~PreTokenizer() {
  for (Compiled* c : passes_) delete c;
}

StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::create(const std::vector<std::string>& patterns) {
  std::unique_ptr<PreTokenizer> pt(new PreTokenizer());
  for (const std::string& pat : patterns) {
    int err = 0;
    PCRE2_SIZE err_off = 0;
    // DOLLAR_ENDONLY: `$` is the end of the piece only (ECMAScript semantics), never before a final \n.
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat.data()), pat.size(),
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &err, &err_off, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      return invalid_argument("pre-tokenizer pattern '" + pat + "': " + reinterpret_cast<const char*>(msg) +
                              " at offset " + std::to_string(err_off));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
    auto* c = new Compiled();
    c->code = code;
    pt->passes_.push_back(c);
  }
  return pt;
}

std::vector<std::pair<uint32_t, uint32_t>> PreTokenizer::split(std::string_view text) const {
  std::vector<std::pair<uint32_t, uint32_t>> cur, next;
  if (text.empty()) return cur;
  cur.emplace_back(0u, static_cast<uint32_t>(text.size()));
  pcre2_match_data* md = pcre2_match_data_create(4, nullptr);
  const auto* base = reinterpret_cast<PCRE2_SPTR>(text.data());
  for (const Compiled* pass : passes_) {
    next.clear();
    next.reserve(cur.size() * 2);
    for (const auto& [off, len] : cur) {
      PCRE2_SPTR subject = base + off;
      PCRE2_SIZE start = 0, gap_begin = 0;
      while (start < len) {
        int rc = pcre2_match(pass->code, subject, len, start, PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
          rc = pcre2_match(pass->code, subject, len, start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, nullptr);
        }
        if (rc < 0) break;  // no further match (or a resource limit): the rest stays one gap
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) {  // empty match: step one code point (none of our patterns can match empty)
          start = ov[0] + 1;
          while (start < len && (subject[start] & 0xC0) == 0x80) ++start;
          continue;
        }
        if (ov[0] > gap_begin) {
          next.emplace_back(off + static_cast<uint32_t>(gap_begin), static_cast<uint32_t>(ov[0] - gap_begin));
        }
        next.emplace_back(off + static_cast<uint32_t>(ov[0]), static_cast<uint32_t>(ov[1] - ov[0]));
        gap_begin = start = ov[1];
      }
      if (gap_begin < len) {
        next.emplace_back(off + static_cast<uint32_t>(gap_begin), static_cast<uint32_t>(len - gap_begin));
      }
    }
    cur.swap(next);
  }
  pcre2_match_data_free(md);
  return cur;
}

}  // namespace frugal
