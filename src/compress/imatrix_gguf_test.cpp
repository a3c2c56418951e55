// GGUF imatrix files: write -> read gives the .dat path's values (both within float rounding of the means),
// detection by content, exact errors for malformed files, and a cross-engine check against a file written by
// llama.cpp's own llama-imatrix (tests/data/llamacpp-imatrix/README.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>

#include "backend/backend.h"
#include "compress/imatrix.h"
#include "compress/imatrix_run.h"
#include "gguf/gguf_file.h"
#include "gguf/gguf_writer.h"
#include "model/config.h"
#include "model/model.h"
#include "support/temp_path.h"
#include "tokenizer/tokenizer.h"

namespace frugal {
namespace {

const std::string kShared = std::string(FRUGAL_SHARED_DIR);
const std::string kFixtureDir = std::string(FRUGAL_SOURCE_DIR) + "/tests/data/llamacpp-imatrix/";

// A dense entry, an MoE stack whose expert 1 was never routed to (count 0 -> values 1.0), an entry with one
// row (bit-exact through both formats) and an entry read from .dat (no counts).
Imatrix sample_imatrix() {
  Imatrix m;
  m.chunks = 3;
  m.chunk_size = 64;
  m.datasets = {"calib.txt"};
  ImatrixEntry dense{3, {0.1f, 2.5f, 1e-7f, 3.3333333f}, {192}};
  ImatrixEntry moe{3, {0.7f, 1.9f, 1.f, 1.f, 0.013f, 42.f}, {150, 0, 77}};
  ImatrixEntry one{1, {5.f, 0.25f}, {1}};
  ImatrixEntry from_dat{3, {0.3f, 0.6f}, {}};
  m.entries["blk.0.attn_q.weight"] = dense;
  m.entries["blk.0.ffn_up_exps.weight"] = moe;
  m.entries["blk.1.attn_k.weight"] = one;
  m.entries["blk.1.ffn_down.weight"] = from_dat;
  return m;
}

std::string write_temp(const std::string& name, const std::vector<uint8_t>& bytes) {
  const std::string path = test_temp_path(name);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), (std::streamsize)bytes.size());
  return path;
}

TEST(ImatrixGguf, RoundTripMatchesTheDatPathWithinFloatRounding) {
  const Imatrix m = sample_imatrix();
  auto gbytes = imatrix_gguf_bytes(m);
  ASSERT_TRUE(gbytes.ok()) << gbytes.status().message();
  // Layout: in_sum2 {K, n_experts} and counts {1, n_experts} as llama-imatrix writes them.
  auto f = GgufFile::from_memory(gbytes->data(), gbytes->size(), "m.gguf");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(*(*f)->get_string("general.type"), "imatrix");
  EXPECT_EQ(*(*f)->get_int("imatrix.chunk_size"), 64);
  const GgufTensorInfo* s = (*f)->tensor("blk.0.ffn_up_exps.weight.in_sum2");
  const GgufTensorInfo* c = (*f)->tensor("blk.0.ffn_up_exps.weight.counts");
  ASSERT_TRUE(s && c);
  EXPECT_EQ(s->shape_string(), "{2, 3}");
  EXPECT_EQ(c->shape_string(), "{1, 3}");
  EXPECT_EQ(reinterpret_cast<const float*>(s->data)[2], 0.f);  // expert 1 saw nothing: raw sum 0
  EXPECT_EQ(reinterpret_cast<const float*>(c->data)[2], 77.f);
  EXPECT_EQ((*f)->tensor("blk.1.ffn_down.weight.counts")->n_elements(), 1);  // .dat entry: one count
  EXPECT_EQ(reinterpret_cast<const float*>((*f)->tensor("blk.1.ffn_down.weight.counts")->data)[0], 3.f * 64);

  auto g = parse_imatrix_gguf(gbytes->data(), gbytes->size(), "m.gguf");
  ASSERT_TRUE(g.ok()) << g.status().message();
  const std::vector<uint8_t> dbytes = imatrix_dat_bytes(m);
  auto d = parse_imatrix_dat(dbytes.data(), dbytes.size(), "m.dat");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(g->chunks, 3);
  EXPECT_EQ(g->chunk_size, 64);
  EXPECT_EQ(g->datasets, std::vector<std::string>{"calib.txt"});
  ASSERT_EQ(g->entries.size(), m.entries.size());
  for (const auto& [name, e] : m.entries) {
    const ImatrixEntry* ge = g->find(name);
    const ImatrixEntry* de = d->find(name);
    ASSERT_TRUE(ge && de) << name;
    EXPECT_EQ(ge->ncall, e.ncall) << name;  // ceil(max count / chunk_size) for the entries written by a run
    ASSERT_EQ(ge->values.size(), e.values.size()) << name;
    for (size_t i = 0; i < e.values.size(); ++i) {
      // Each path rounds twice (v * n to f32, then / n): |error| <= (2^-23 + 2^-48) |v| < 2^-22 |v|.
      const float tol = std::ldexp(std::fabs(e.values[i]), -22);
      EXPECT_NEAR(ge->values[i], e.values[i], tol) << name << "[" << i << "]";
      EXPECT_NEAR(ge->values[i], de->values[i], 2 * tol) << name << "[" << i << "]";
    }
  }
  EXPECT_EQ(g->find("blk.0.ffn_up_exps.weight")->counts, (std::vector<int64_t>{150, 0, 77}));
  EXPECT_EQ(g->find("blk.0.ffn_up_exps.weight")->values[2], 1.f);  // count 0 -> 1.0, bit-exact
  EXPECT_EQ(g->find("blk.1.attn_k.weight")->values, m.entries.at("blk.1.attn_k.weight").values);  // n = 1: exact
}

TEST(ImatrixGguf, FormatIsToldByContentAndByOutputName) {
  const Imatrix m = sample_imatrix();
  // A GGUF named .dat and a .dat named .gguf: read_imatrix goes by the bytes, not the name.
  const std::string gguf_named_dat = write_temp("imat_really_gguf.dat", *imatrix_gguf_bytes(m));
  const std::string dat_named_gguf = write_temp("imat_really_dat.gguf", imatrix_dat_bytes(m));
  auto a = read_imatrix(gguf_named_dat);
  auto b = read_imatrix(dat_named_gguf);
  std::remove(gguf_named_dat.c_str());
  std::remove(dat_named_gguf.c_str());
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(a->chunk_size, 64);  // only GGUF keeps the chunk size
  EXPECT_EQ(b->chunk_size, 0);
  EXPECT_FALSE(a->find("blk.0.attn_q.weight")->counts.empty());
  EXPECT_TRUE(b->find("blk.0.attn_q.weight")->counts.empty());
  EXPECT_EQ(imatrix_format_for_path("x/imatrix.dat"), ImatrixFormat::kDat);
  EXPECT_EQ(imatrix_format_for_path("imatrix.gguf"), ImatrixFormat::kGguf);
  EXPECT_EQ(imatrix_format_for_path("imatrix.bin"), ImatrixFormat::kGguf);  // GGUF unless the name says .dat
  EXPECT_EQ(parse_imatrix_format("bin").status().message(), "imatrix output format 'bin': expected gguf or dat");
  auto missing = read_imatrix(test_temp_path("no_such_imatrix.gguf"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no_such_imatrix.gguf: cannot open imatrix file"), std::string::npos);
}

// A GGUF imatrix with one entry "w" built from the given tensors and keys.
struct BadCase {
  std::string what, expected;
  std::function<void(GgufWriter&)> build;
};

void meta(GgufWriter& w) {
  w.set_string("general.type", "imatrix");
  w.set_string_array("imatrix.datasets", {"d.txt"});
  w.set_u32("imatrix.chunk_count", 1);
  w.set_u32("imatrix.chunk_size", 4);
}
std::vector<uint8_t> f32s(std::vector<float> v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

TEST(ImatrixGguf, MalformedFilesGiveExactErrors) {
  const std::vector<BadCase> cases = {
      {"missing counts", "bad.gguf: tensor 'w.in_sum2' has no matching 'w.counts'",
       [](GgufWriter& w) { meta(w); w.add_tensor("w.in_sum2", DType::F32, {2, 1}, f32s({1, 2})); }},
      {"missing sums", "bad.gguf: tensor 'w.counts' has no matching 'w.in_sum2'",
       [](GgufWriter& w) { meta(w); w.add_tensor("w.counts", DType::F32, {1, 1}, f32s({4})); }},
      {"shape mismatch",
       "bad.gguf: tensor 'w.in_sum2' has 5 values {5, 1}, not a multiple of the 2 counts of 'w.counts' {1, 2}",
       [](GgufWriter& w) {
         meta(w);
         w.add_tensor("w.in_sum2", DType::F32, {5, 1}, f32s({1, 2, 3, 4, 5}));
         w.add_tensor("w.counts", DType::F32, {1, 2}, f32s({4, 4}));
       }},
      {"wrong type", "bad.gguf: tensor 'w.in_sum2' is F16, expected F32",
       [](GgufWriter& w) {
         meta(w);
         w.add_tensor("w.in_sum2", DType::F16, {2, 1}, std::vector<uint8_t>(4, 0));
         w.add_tensor("w.counts", DType::F32, {1, 1}, f32s({4}));
       }},
      {"negative count", "bad.gguf: tensor 'w.counts' count 0 is -4.000000, expected a finite count >= 0",
       [](GgufWriter& w) {
         meta(w);
         w.add_tensor("w.in_sum2", DType::F32, {2, 1}, f32s({1, 2}));
         w.add_tensor("w.counts", DType::F32, {1, 1}, f32s({-4}));
       }},
      {"non-finite sum", "bad.gguf: tensor 'w.in_sum2' value 1 is not finite",
       [](GgufWriter& w) {
         meta(w);
         w.add_tensor("w.in_sum2", DType::F32, {2, 1}, f32s({1, NAN}));
         w.add_tensor("w.counts", DType::F32, {1, 1}, f32s({4}));
       }},
      {"no data", "bad.gguf: GGUF imatrix without any NAME.in_sum2 / NAME.counts tensor", [](GgufWriter& w) { meta(w); }},
      {"missing key", "bad.gguf: not a GGUF imatrix: key 'imatrix.chunk_size' is missing",
       [](GgufWriter& w) {
         w.set_string_array("imatrix.datasets", {"d.txt"});
         w.set_u32("imatrix.chunk_count", 1);
       }},
      {"a model file", "bad.gguf: general.type is 'model', not 'imatrix' (a model file?)",
       [](GgufWriter& w) { w.set_string("general.type", "model"); }},
  };
  for (const BadCase& c : cases) {
    GgufWriter w;
    c.build(w);
    const std::vector<uint8_t> bytes = w.to_bytes();
    auto r = parse_imatrix_gguf(bytes.data(), bytes.size(), "bad.gguf");
    ASSERT_FALSE(r.ok()) << c.what;
    EXPECT_EQ(r.status().message(), c.expected) << c.what;
  }
  // Truncated: the GGUF reader's own message, naming the file (through read_imatrix: detected as GGUF).
  GgufWriter w;
  meta(w);
  w.add_tensor("w.in_sum2", DType::F32, {2, 1}, f32s({1, 2}));
  w.add_tensor("w.counts", DType::F32, {1, 1}, f32s({4}));
  std::vector<uint8_t> bytes = w.to_bytes();
  ASSERT_TRUE(parse_imatrix_gguf(bytes.data(), bytes.size(), "ok.gguf").ok());
  {
    auto ok = GgufFile::from_memory(bytes.data(), bytes.size(), "ok.gguf");
    ASSERT_TRUE(ok.ok());
    const GgufTensorInfo* t = (*ok)->tensor("w.counts");
    bytes.resize((size_t)(t->data - (*ok)->file_data()) + 2);  // cut inside w.counts's data
  }
  const std::string path = write_temp("imat_truncated.gguf", bytes);
  auto r = read_imatrix(path);
  std::remove(path.c_str());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind(path + ": ", 0), 0u) << r.status().message();
  EXPECT_NE(r.status().message().find("w.counts"), std::string::npos) << r.status().message();
}

// A real MoE run (golden deepseek-moe): the routed-expert stacks get one count per expert, in_sum2 {K, E} and
// counts {1, E} as llama-imatrix writes them, the counts of a stack add up to tokens x experts per token (each
// token's row goes to n_expert_used experts), and the means survive the GGUF round trip.
TEST(ImatrixGguf, MoeRunWritesPerExpertCounts) {
  auto model = Model::load(kShared + "/golden/deepseek-moe-F32.gguf");
  ASSERT_TRUE(model.ok()) << model.status().message();
  const MoeConfig& moe = (*model)->config().moe;
  ASSERT_GT(moe.n_expert, 1);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 64; ++i) tokens.push_back(3 + (i * 37) % 200);
  ImatrixRunOptions o;
  o.n_ctx = 32;
  o.n_batch = 32;
  o.bos = 1;
  auto backend = make_ref_backend();
  auto m = compute_imatrix(**model, *backend, tokens, o);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto bytes = imatrix_gguf_bytes(*m);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  auto f = GgufFile::from_memory(bytes->data(), bytes->size(), "moe.gguf");
  ASSERT_TRUE(f.ok());
  auto back = read_imatrix_gguf(**f);
  ASSERT_TRUE(back.ok()) << back.status().message();
  int stacks = 0;
  for (const auto& [name, e] : m->entries) {
    const ImatrixEntry* be = back->find(name);
    ASSERT_NE(be, nullptr) << name;
    EXPECT_EQ(be->counts, e.counts) << name;
    for (size_t i = 0; i < e.values.size(); ++i)
      EXPECT_NEAR(be->values[i], e.values[i], std::ldexp(std::fabs(e.values[i]), -22)) << name << "[" << i << "]";
    if (name.find("_exps.weight") == std::string::npos) {
      EXPECT_EQ(e.counts, std::vector<int64_t>{64}) << name;  // dense: every token once
      continue;
    }
    ++stacks;
    const GgufTensorInfo* s = (*f)->tensor(name + ".in_sum2");
    const GgufTensorInfo* c = (*f)->tensor(name + ".counts");
    ASSERT_TRUE(s && c) << name;
    EXPECT_EQ(s->ne[1], moe.n_expert) << name;
    EXPECT_EQ(c->ne[0], 1) << name;
    EXPECT_EQ(c->ne[1], moe.n_expert) << name;
    int64_t total = 0;
    for (int64_t n : e.counts) total += n;
    EXPECT_EQ(total, 64 * moe.n_expert_used) << name;
  }
  EXPECT_GT(stacks, 0);
}

// frugal's compute_imatrix over tests/data/calibration_stories.txt in chunks of 64 tokens (as the fixtures
// were made) against a llama-imatrix fixture: same entries, same counts, means within rel_tol.
void expect_fixture_matches_our_run(const std::string& model_path, const Imatrix& fixture, double rel_tol) {
  auto model = Model::load(model_path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto tok = Tokenizer::from_gguf((*model)->gguf());
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  std::ifstream in(std::string(FRUGAL_SOURCE_DIR) + "/tests/data/calibration_stories.txt", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::vector<int32_t> tokens = (*tok)->encode(text, true, false);
  ImatrixRunOptions o;
  o.n_ctx = 64;
  o.n_batch = 64;
  o.bos = (*tok)->add_bos() ? (*tok)->bos() : -1;
  auto backend = make_ref_backend();
  auto ours = compute_imatrix(**model, *backend, tokens, o);
  ASSERT_TRUE(ours.ok()) << ours.status().message();
  EXPECT_EQ(ours->chunks, fixture.chunks);
  double worst = 0;
  std::string worst_at;
  for (const auto& [name, fe] : fixture.entries) {
    const ImatrixEntry* oe = ours->find(name);
    ASSERT_NE(oe, nullptr) << name;
    EXPECT_EQ(oe->counts, fe.counts) << name;  // same tokens, same chunking
    ASSERT_EQ(oe->values.size(), fe.values.size()) << name;
    for (size_t i = 0; i < fe.values.size(); ++i) {
      const double rel = std::fabs((double)oe->values[i] - fe.values[i]) / std::max(1e-6, (double)std::fabs(fe.values[i]));
      if (rel > worst) worst = rel, worst_at = name + "[" + std::to_string(i) + "]";
    }
  }
  std::printf("  frugal vs llama-imatrix (%s): worst relative difference of the means %.3g at %s\n",
              model_path.c_str(), worst, worst_at.c_str());
  EXPECT_LE(worst, rel_tol) << worst_at;
}

// The fixture: llama-imatrix (llama.cpp 80fb11ac) on stories260K over tests/data/calibration_stories.txt,
// -c 64 -b 64 (12 chunks of 64 tokens, one sequence per batch), with an f32 KV cache and flash attention off
// (frugal's compute_imatrix keeps K/V in f32; llama.cpp's default f16 cache / flash attention round attention
// inputs to f16, which moves the means of attn_output and everything after it by up to 1.4e-3 relative).
// frugal's compute_imatrix on the same tokens and chunking must give the same counts exactly and the same
// means within `kRelTol`.
TEST(ImatrixGguf, LlamaCppFixtureMatchesOurRun) {
  auto fixture = read_imatrix(kFixtureDir + "stories260K-c64.imatrix.gguf");
  ASSERT_TRUE(fixture.ok()) << fixture.status().message();
  EXPECT_EQ(fixture->chunks, 12);
  EXPECT_EQ(fixture->chunk_size, 64);
  EXPECT_EQ(fixture->datasets, std::vector<std::string>{"calibration_stories.txt"});
  EXPECT_EQ(fixture->entries.size(), 35u);  // 5 layers x 7 matmul weights (llama-imatrix skips output.weight)

  // Measured worst relative difference 1.84e-6 (blk.0.attn_k input, the RMS-normed embedding; every tensor
  // 0.9e-6 .. 1.8e-6). llama-imatrix adds up the 768 squares per column in f32 (we use double): a random-walk
  // rounding error of ~sqrt(768) * 2^-24 = 1.7e-6, which is what we see (worst case 768 * 2^-24 = 4.6e-5).
  // 1e-5 leaves 5x headroom and still fails on a real difference such as the f16 KV cache above (1.4e-3).
  expect_fixture_matches_our_run(kShared + "/models/stories260K.gguf", *fixture, 1e-5);
}

// The same for a DeepSeek-V3-shaped MLA model in the older attn_kv_b form (golden deepseek2-v3-F32):
// frugal runs MLA absorbed (attn_kv_b's rows per head on attention outputs), llama.cpp multiplies attn_kv_b
// with the normalized KV latent; Backend::note_input makes our statistics the latter's (before it, the
// attn_kv_b means differed by up to 92% and its counts were n_head x tokens). Fixture made like the one
// above (tests/data/llamacpp-imatrix/README.md).
TEST(ImatrixGguf, LlamaCppFixtureMatchesOurRunOnMlaKvB) {
  auto fixture = read_imatrix(kFixtureDir + "deepseek2-v3-c64.imatrix.gguf");
  ASSERT_TRUE(fixture.ok()) << fixture.status().message();
  int kv_b = 0;
  for (const auto& [name, e] : fixture->entries) kv_b += name.find("attn_kv_b") != std::string::npos;
  EXPECT_GT(kv_b, 0);
  expect_fixture_matches_our_run(kShared + "/golden/deepseek2-v3-F32.gguf", *fixture, 1e-5);
}

}  // namespace
}  // namespace frugal
