#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <yaml-cpp/yaml.h>

#include "tensorblob/blob.h"
#include "tensorblob/dataset.h"
#include "tensorblob/error.h"

namespace tensorblob {

namespace {

std::string absolute(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : path;
}

std::string index_name(int64_t i, int width) {
  std::string digits = std::to_string(i);
  return digits.size() >= static_cast<size_t>(width) ? digits
                                                     : std::string(static_cast<size_t>(width) - digits.size(), '0') + digits;
}

class BlobDataset final : public Dataset {
 public:
  BlobDataset(const std::string& path, size_t max_cached)
      : source_(absolute(path)), blob_(open_blob(path, max_cached)) {
    struct stat st;
    std::string stat_path = path + "/.stat";
    if (::stat(stat_path.c_str(), &st) == 0)
      mtime_ns_ = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  }

  const std::string& source() const override { return source_; }
  int64_t count() const override { return blob_.size(); }
  std::string dtype_name() const override { return std::string(dtype_info(blob_.dtype()).name); }
  std::string npy_descr() const override { return std::string(dtype_info(blob_.dtype()).typestr); }
  Shape item_shape(int64_t) const override { return blob_.shape(); }
  Shape range_shape(int64_t first, int64_t last) const override {
    Shape s = blob_.shape();
    s.insert(s.begin(), last - first);
    return s;
  }
  uint64_t item_offset(int64_t i) const override {
    return static_cast<uint64_t>(i) * static_cast<uint64_t>(blob_.item_bytes());
  }
  void read(uint64_t offset, size_t size, std::byte* dst) const override {
    blob_.read_bytes(static_cast<int64_t>(offset), static_cast<int64_t>(size), dst);
  }
  int64_t mtime_ns() const override { return mtime_ns_; }

  std::string meta_yaml(const NamingRules& naming) const override {
    const int64_t n = count();
    const bool npy = naming.npy && !npy_descr().empty();
    YAML::Emitter y;
    y << YAML::BeginMap;
    y << YAML::Key << "format" << YAML::Value << "tensorblob";
    y << YAML::Key << "source" << YAML::Value << source_;
    y << YAML::Key << "dtype" << YAML::Value << dtype_name();
    y << YAML::Key << "shape" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (int64_t d : blob_.shape()) y << d;
    y << YAML::EndSeq;
    y << YAML::Key << "item_bytes" << YAML::Value << blob_.item_bytes();
    y << YAML::Key << "count" << YAML::Value << n;
    y << YAML::Key << "total_bytes" << YAML::Value << item_offset(n);
    y << YAML::Key << "block_size" << YAML::Value << blob_.block_size();
    y << YAML::Key << "blocks" << YAML::Value << (n + blob_.block_size() - 1) / blob_.block_size();
    y << YAML::Key << "hash" << YAML::Value << "none (fixed-shape blobs carry no content hash)";
    y << YAML::Key << "npy" << YAML::Value
      << (npy ? "yes" : naming.npy ? "no: numpy has no dtype " + dtype_name() : "no: turned off in the config");
    y << YAML::Key << "naming" << YAML::Value << YAML::BeginMap;
    y << YAML::Key << "width" << YAML::Value << naming.width;
    y << YAML::Key << "tensor" << YAML::Value
      << "NNNNNN.bin is tensor NNNNNN, zero-padded to width digits (wider indices in full)" +
             std::string(npy ? "; NNNNNN.npy the same with a .npy header, found by name" : "");
    if (naming.ranges)
      y << YAML::Key << "range" << YAML::Value
        << "A-B.bin" + std::string(npy ? " and A-B.npy" : "") +
               ": tensors A to B-1 (half-open, 0 <= A <= B <= count), found by name";
    y << YAML::Key << "all" << YAML::Value
      << "all.bin: every tensor in order" + std::string(npy ? "; all.npy: the same with a .npy header" : "");
    y << YAML::Key << "canonical" << YAML::Value << "only the spelling above exists; 123.bin, +00123.bin are not found";
    if (n > 0) {
      y << YAML::Key << "first" << YAML::Value << index_name(0, naming.width) + ".bin";
      y << YAML::Key << "last" << YAML::Value << index_name(n - 1, naming.width) + ".bin";
    }
    y << YAML::EndMap;
    y << YAML::EndMap;
    return std::string(y.c_str()) + "\n";
  }

 private:
  static Blob open_blob(const std::string& path, size_t max_cached) {
    OpenOptions o;
    o.max_cached_blocks = max_cached;
    return Blob::open(path, "r", o);
  }

  std::string source_;
  Blob blob_;
  int64_t mtime_ns_ = 0;
};

}  // namespace

std::unique_ptr<Dataset> open_blob_dataset(const std::string& path, size_t max_cached_blocks) {
  return std::make_unique<BlobDataset>(path, max_cached_blocks);
}

std::unique_ptr<Dataset> open_dataset(const std::string& path, size_t max_cached_blocks) {
  return open_blob_dataset(path, max_cached_blocks);
}

}  // namespace tensorblob
