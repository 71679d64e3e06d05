#include <sys/stat.h>

#include "meta_yaml.h"
#include "tensorblob/dataset.h"
#include "tensorblob/ragged.h"

namespace tensorblob {

std::string index_name(int64_t i, int width) {
  std::string digits = std::to_string(i);
  if (digits.size() < static_cast<size_t>(width)) digits.insert(0, static_cast<size_t>(width) - digits.size(), '0');
  return digits;
}

std::string npy_status(const NamingRules& naming, const std::string& descr, const std::string& dtype_name) {
  if (!naming.npy) return "no: turned off in the config";
  if (descr.empty()) return "no: numpy has no dtype " + dtype_name;
  return "yes";
}

void emit_naming(YAML::Emitter& y, const NamingRules& naming, int64_t count, bool npy, const char* item_word) {
  const std::string word = item_word;
  y << YAML::Key << "naming" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "width" << YAML::Value << naming.width;
  y << YAML::Key << word << YAML::Value
    << "NNNNNN.bin is " + word + " NNNNNN, zero-padded to width digits (wider indices in full)" +
           std::string(npy ? "; NNNNNN.npy the same with a .npy header, found by name" : "");
  if (naming.ranges)
    y << YAML::Key << "range" << YAML::Value
      << "A-B.bin" + std::string(npy ? " and A-B.npy" : "") + ": " + word +
             "s A to B-1 concatenated (half-open, 0 <= A <= B <= count), found by name";
  y << YAML::Key << "all" << YAML::Value
    << "all.bin: every " + word + " in order" + std::string(npy ? "; all.npy: the same with a .npy header" : "");
  y << YAML::Key << "canonical" << YAML::Value << "only the spelling above exists; 123.bin, +00123.bin are not found";
  if (count > 0) {
    y << YAML::Key << "first" << YAML::Value << index_name(0, naming.width) + ".bin";
    y << YAML::Key << "last" << YAML::Value << index_name(count - 1, naming.width) + ".bin";
  }
  y << YAML::EndMap;
}

std::vector<std::byte> Dataset::item_copy(int64_t i) const {
  const uint64_t a = item_offset(i), b = item_offset(i + 1);
  std::vector<std::byte> out(b - a);
  read(a, out.size(), out.data());
  return out;
}

bool names_blob(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::unique_ptr<Dataset> open_dataset(const std::string& path, size_t max_cached_blocks) {
  return names_blob(path) ? open_blob_dataset(path, max_cached_blocks) : open_ragged_dataset(path);
}

}  // namespace tensorblob
