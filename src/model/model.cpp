#include "model/model.h"

#include "model/architectures.h"

namespace frugal {

namespace {

struct ArchEntry {
  const char* name;
  StatusOr<std::unique_ptr<Model>> (*load)(std::unique_ptr<GgufFile>);
};

// DeepSeek-MoE (`deepseek`) and DeepSeek-V2/V3 (`deepseek2`) join this table in their own files.
constexpr ArchEntry kArchitectures[] = {
    {"llama", load_llama},
    {"qwen2", load_qwen2},
};

}  // namespace

std::vector<std::string> Model::supported_architectures() {
  std::vector<std::string> r;
  for (const ArchEntry& a : kArchitectures) r.push_back(a.name);
  return r;
}

StatusOr<std::unique_ptr<Model>> Model::load(const std::string& path) {
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::open(path));
  FRUGAL_ASSIGN_OR_RETURN(std::string arch, file->get_string("general.architecture"));
  for (const ArchEntry& a : kArchitectures)
    if (arch == a.name) return a.load(std::move(file));
  std::string list;
  for (const ArchEntry& a : kArchitectures) list += (list.empty() ? "" : ", ") + std::string(a.name);
  return unsupported(path + ": architecture '" + arch + "' is not supported (supported: " + list + ")");
}

}  // namespace frugal
