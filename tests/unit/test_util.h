// Helpers shared by the unit tests: a temporary directory that is always
// removed, file helpers, and tensors with distinct, predictable values.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tensorblob/blob.h"
#include "tensorblob/blob_format.h"
#include "tensorblob/error.h"
#include "tensorblob/tensor.h"

namespace testutil {

namespace fs = std::filesystem;

// A fresh directory under $TMPDIR, removed with everything in it on scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "tblob-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : throw std::runtime_error("mkdtemp failed");
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

// The path of block k of the blob at p, from its committed .stat.
inline std::string block_path(const std::string& p, int k) {
  return p + "/" + tensorblob::parse_blob_status(read_file(p + "/.stat"), "s").blocks.at(static_cast<size_t>(k));
}

// n float32 tensors of `shape`; element j of tensor i is i * 1000 + j + base.
inline tensorblob::Tensor iota_f32(int64_t n, tensorblob::Shape shape, float base = 0) {
  shape.insert(shape.begin(), n);
  tensorblob::Tensor t(tensorblob::DType::kFloat32, shape);
  auto v = t.values<float>();
  int64_t per = n ? static_cast<int64_t>(v.size()) / n : 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < per; ++j) v[i * per + j] = static_cast<float>(i * 1000 + j) + base;
  return t;
}

// The first value of a float32 tensor (tensor i of iota_f32 starts at i * 1000 + base).
inline float first(const tensorblob::Tensor& t) { return t.values<float>()[0]; }

// First values of each tensor in a batch of float32 tensors.
inline std::vector<float> firsts(const tensorblob::Tensor& batch) {
  std::vector<float> out;
  if (batch.shape().empty() || batch.shape()[0] == 0) return out;
  auto v = batch.values<float>();
  size_t per = v.size() / static_cast<size_t>(batch.shape()[0]);
  for (size_t i = 0; i < v.size(); i += per) out.push_back(v[i]);
  return out;
}

inline tensorblob::OpenOptions f32_options(tensorblob::Shape shape, int64_t block_size) {
  tensorblob::OpenOptions o;
  o.dtype = "float32";
  o.shape = std::move(shape);
  o.block_size = block_size;
  return o;
}

// Names of the block files (everything but .conf/.stat) in a blob directory.
inline std::vector<std::string> block_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (n[0] != '.') out.push_back(n);
  }
  return out;
}

// Whether the filesystem under `dir` reserves space (fallocate); where it
// cannot, blocks are only sized and there is nothing to check.
inline bool can_fallocate(const std::string& dir) {
  const std::string probe = dir + "/.probe";
  int fd = ::open(probe.c_str(), O_RDWR | O_CREAT, 0644);
  if (fd < 0) return false;
  bool can = ::fallocate(fd, 0, 0, 4096) == 0;
  ::close(fd);
  ::unlink(probe.c_str());
  return can;
}

// Runs f, which must throw tensorblob::Error with `code` and `text` in its message.
template <typename F>
void check_error(F&& f, tensorblob::Errc code, const std::string& text) {
  try {
    f();
    FAIL("expected an error containing: " << text);
  } catch (const tensorblob::Error& e) {
    CHECK(e.code() == code);
    CHECK_THAT(e.what(), Catch::Contains(text));
  }
}

}  // namespace testutil
