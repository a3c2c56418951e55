// Safetensors reader: well-formed files (single and sharded), aliases, and every malformed-input error.
#include "compress/safetensors.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "base/half.h"
#include "compress/convert_hf.h"

namespace frugal {
namespace {

// A fresh directory per test (pid + test name), removed afterwards.
class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = "/tmp/frugal_st_" + std::to_string(::getpid()) + "_" + info->name();
    ::mkdir(dir_.c_str(), 0700);
  }
  void TearDown() override {
    for (const std::string& f : files_) std::remove(f.c_str());
    ::rmdir(dir_.c_str());
  }
  // Writes header length + header + data to dir_/name.
  std::string write(const std::string& name, const std::string& header, const std::string& data,
                    int64_t header_len = -1) {
    const std::string p = dir_ + "/" + name;
    std::ofstream out(p, std::ios::binary);
    const uint64_t n = header_len >= 0 ? (uint64_t)header_len : header.size();
    for (int i = 0; i < 8; ++i) out.put((char)((n >> (8 * i)) & 0xff));
    out << header << data;
    files_.push_back(p);
    return p;
  }
  std::string write_raw(const std::string& name, const std::string& bytes) {
    const std::string p = dir_ + "/" + name;
    std::ofstream(p, std::ios::binary) << bytes;
    files_.push_back(p);
    return p;
  }
  static std::string floats(std::initializer_list<float> v) {
    std::string s(v.size() * 4, '\0');
    std::memcpy(s.data(), v.begin(), s.size());
    return s;
  }
  // Expects open() to fail with a message containing every one of `parts`.
  void expect_error(const std::string& path, std::initializer_list<const char*> parts) {
    auto f = SafetensorsFile::open(path);
    ASSERT_FALSE(f.ok()) << path;
    for (const char* p : parts) EXPECT_NE(f.status().message().find(p), std::string::npos) << f.status().message();
    EXPECT_NE(f.status().message().find(path), std::string::npos) << f.status().message();
  }
  std::string dir_;
  std::vector<std::string> files_;
};

TEST_F(SafetensorsTest, ReadsDtypesShapesAndAliases) {
  const uint16_t h[2] = {f32_to_fp16(1.5f), f32_to_fp16(-2.0f)};
  const uint16_t b[2] = {f32_to_bf16(0.25f), f32_to_bf16(3.0f)};
  std::string data = floats({1, 2, 3, 4, 5, 6});
  data.append((const char*)h, 4).append((const char*)b, 4);
  const std::string p = write("model.safetensors",
                              R"({"__metadata__":{"format":"pt","tied.weight":"a.weight"},)"
                              R"("a.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                              R"("h":{"dtype":"F16","shape":[2],"data_offsets":[24,28]},)"
                              R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[28,32]}})",
                              data);
  auto c = SafetensorsCheckpoint::open(dir_);
  ASSERT_TRUE(c.ok()) << c.status().message();
  const SafeTensor* a = (*c)->find("a.weight");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->to_f32(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ((*c)->find("h")->to_f32(), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ((*c)->find("b")->to_f32(), (std::vector<float>{0.25f, 3.0f}));
  EXPECT_EQ((*c)->find("tied.weight"), a);
  EXPECT_TRUE((*c)->is_alias("tied.weight"));
  EXPECT_FALSE((*c)->is_alias("format"));
  EXPECT_EQ((*c)->find("missing"), nullptr);
  EXPECT_EQ((*c)->names(), (std::vector<std::string>{"a.weight", "h", "b"}));
}

TEST_F(SafetensorsTest, ShardedCheckpoint) {
  write("model-00001-of-00002.safetensors", R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
        floats({1, 2}));
  write("model-00002-of-00002.safetensors", R"({"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
        floats({7}));
  write_raw("model.safetensors.index.json",
            R"({"metadata":{},"weight_map":{"x":"model-00001-of-00002.safetensors",)"
            R"("y":"model-00002-of-00002.safetensors"}})");
  auto c = SafetensorsCheckpoint::open(dir_);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ((*c)->find("x")->to_f32(), (std::vector<float>{1, 2}));
  EXPECT_EQ((*c)->find("y")->to_f32(), (std::vector<float>{7}));

  // A weight_map entry naming the wrong shard.
  write_raw("model.safetensors.index.json",
            R"({"weight_map":{"x":"model-00002-of-00002.safetensors","y":"model-00002-of-00002.safetensors"}})");
  auto bad = SafetensorsCheckpoint::open(dir_);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("tensor 'x'"), std::string::npos) << bad.status().message();
}

TEST_F(SafetensorsTest, MissingCheckpoint) {
  auto c = SafetensorsCheckpoint::open(dir_);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("model.safetensors"), std::string::npos);
}

TEST_F(SafetensorsTest, TruncatedFiles) {
  expect_error(write_raw("short.safetensors", "abc"), {"shorter than the 8-byte header length"});
  expect_error(write("hdr.safetensors", R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "", 1000),
               {"past the end of the file"});
  // Data area cut short: the tensor's end offset is past it.
  expect_error(write("data.safetensors", R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                     floats({1, 2})),
               {"tensor 'x'", "out of the data area"});
}

TEST_F(SafetensorsTest, BadHeaders) {
  expect_error(write("json.safetensors", "{not json", ""), {"not a JSON object"});
  expect_error(write("arr.safetensors", "[1,2]", ""), {"not a JSON object"});
  expect_error(write("nodt.safetensors", R"({"x":{"shape":[1],"data_offsets":[0,4]}})", floats({1})),
               {"tensor 'x'", "dtype"});
  expect_error(write("off.safetensors", R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", floats({1})),
               {"tensor 'x'", "data_offsets"});
  expect_error(write("neg.safetensors", R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", floats({1})),
               {"tensor 'x'", "shape"});
}

TEST_F(SafetensorsTest, BadOffsetsDtypesAndSizes) {
  expect_error(write("range.safetensors", R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})",
                     floats({1, 2, 3})),
               {"tensor 'x'", "out of the data area"});
  expect_error(write("overlap.safetensors",
                     R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                     R"("y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                     floats({1, 2, 3})),
               {"tensor 'y'", "overlaps tensor 'x'"});
  expect_error(write("dtype.safetensors", R"({"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})",
                     floats({1, 2})),
               {"tensor 'x'", "dtype 'I64' is not supported"});
  expect_error(write("size.safetensors", R"({"x":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}})",
                     floats({1, 2})),
               {"tensor 'x'", "8 bytes for shape of 3 elements of F16"});
}

TEST_F(SafetensorsTest, ConvertRejectsUnsupportedArchitecture) {
  write_raw("config.json", R"({"architectures":["GPT2LMHeadModel"],"hidden_size":8})");
  auto s = convert_hf_to_gguf(dir_, dir_ + "/out.gguf", ConvertOptions{});
  ASSERT_FALSE(s.ok());
  const std::string& m = s.status().message();
  EXPECT_NE(m.find("GPT2LMHeadModel"), std::string::npos) << m;
  EXPECT_NE(m.find("LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM"), std::string::npos) << m;
}

}  // namespace
}  // namespace frugal
