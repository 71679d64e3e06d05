// The mount's files read through Filesystem, without FUSE.
#include "filesystem.h"

#include <catch2/catch.hpp>

#include "tensorblob/blob.h"
#include "tensorblob/error.h"
#include "tensorblob/npy.h"
#include "tensorblob/store.h"
#include "test_util.h"

using namespace blobfs;
using testutil::TempDir;

namespace {

// The view a fresh mount of a new blob of n tensors shows.
std::shared_ptr<const View> make_fs(const TempDir& t, int64_t n, const std::string& dtype = "float32") {
  tensorblob::OpenOptions o;
  o.dtype = dtype;
  o.shape = tensorblob::Shape{3};
  o.block_size = 4;
  {
    tensorblob::Blob b = tensorblob::Blob::open(t / "b", "w", o);
    tensorblob::Tensor data(tensorblob::parse_dtype(dtype), {n, 3});
    for (size_t i = 0; i < data.nbytes(); ++i) data.data()[i] = std::byte(i % 251);
    b.write(data);
  }
  return Filesystem(tensorblob::open_store(t / "b"), Options{}).view();
}

std::string read_all(const View& fs, const Node& n, size_t chunk = 7) {
  std::string out;
  std::vector<char> buf(chunk);
  for (uint64_t off = 0;; off += chunk) {
    size_t k = fs.read(n, off, chunk, buf.data());
    out.append(buf.data(), k);
    if (k < chunk) break;
  }
  return out;
}

std::string blob_bytes(int64_t first, int64_t last) {
  std::string s;
  for (int64_t i = first * 12; i < last * 12; ++i) s.push_back(static_cast<char>(i % 251));
  return s;
}

}  // namespace

TEST_CASE("tensor, range and all files hold exactly the blob's bytes") {
  TempDir t;
  auto fs = make_fs(t, 10);
  const Namespace& ns = fs->names();
  CHECK(read_all(*fs, *ns.lookup("000003.bin")) == blob_bytes(3, 4));
  CHECK(read_all(*fs, *ns.lookup("all.bin")) == blob_bytes(0, 10));
  CHECK(read_all(*fs, *ns.lookup("000002-000009.bin"), 5) == blob_bytes(2, 9));
  CHECK(read_all(*fs, *ns.lookup("000004-000004.bin")).empty());
  CHECK(fs->size(*ns.lookup("all.bin")) == 120);
  CHECK(fs->attributes(*ns.lookup("000001.bin"), 18).st_size == 12);
}

TEST_CASE(".npy files are numpy's header followed by the bytes") {
  TempDir t;
  auto fs = make_fs(t, 10);
  const Namespace& ns = fs->names();
  std::string one = read_all(*fs, *ns.lookup("000007.npy"), 50);
  CHECK(one == tensorblob::npy_header("<f4", {3}) + blob_bytes(7, 8));
  std::string range = read_all(*fs, *ns.lookup("000001-000004.npy"), 64);
  CHECK(range == tensorblob::npy_header("<f4", {3, 3}) + blob_bytes(1, 4));
  auto all = tensorblob::parse_npy_header(read_all(*fs, *ns.lookup("all.npy")), "all.npy");
  CHECK(all.shape == tensorblob::Shape{10, 3});
  CHECK(fs->size(*ns.lookup("all.npy")) == all.data_offset + 120);
}

TEST_CASE("reads past the end return nothing and meta.yaml reads whole") {
  TempDir t;
  auto fs = make_fs(t, 2);
  char buf[64];
  CHECK(fs->read(*fs->names().lookup("000001.bin"), 12, 10, buf) == 0);
  CHECK(fs->read(*fs->names().lookup("000001.bin"), 1000, 10, buf) == 0);
  CHECK(fs->read(*fs->names().lookup("000001.bin"), 10, 10, buf) == 2);
  std::string meta = read_all(*fs, Node{NodeKind::kMeta});
  CHECK(meta.find("count: 2\n") != std::string::npos);
  CHECK(meta.find("dtype: float32\n") != std::string::npos);
  CHECK(meta.find("shape: [3]\n") != std::string::npos);
}

TEST_CASE("a dtype numpy lacks has no .npy views and meta.yaml says so") {
  TempDir t;
  auto fs = make_fs(t, 2, "bfloat16");
  CHECK(!fs->names().lookup("all.npy"));
  CHECK(!fs->names().lookup("000000.npy"));
  CHECK(fs->names().lookup("000000.bin"));
  CHECK(read_all(*fs, Node{NodeKind::kMeta}).find("npy: \"no: numpy has no dtype bfloat16\"") != std::string::npos);
}

TEST_CASE("a missing block fails only the reads that touch it") {
  TempDir t;
  auto fs = make_fs(t, 10);
  auto st = tensorblob::parse_blob_status(testutil::read_file(t / "b/.stat"), "s");
  std::filesystem::remove(t / ("b/" + st.blocks[1]));  // tensors 4..7
  char buf[64];
  CHECK(fs->read(*fs->names().lookup("000003.bin"), 0, 12, buf) == 12);
  CHECK(fs->read(*fs->names().lookup("000008.bin"), 0, 12, buf) == 12);
  CHECK_THROWS_WITH(fs->read(*fs->names().lookup("000005.bin"), 0, 12, buf), Catch::Contains(st.blocks[1]));
  CHECK_THROWS_AS(fs->read(*fs->names().lookup("all.bin"), 40, 20, buf), tensorblob::Error);
}

TEST_CASE("modes, owner and times come from the options and the blob") {
  TempDir t;
  auto fs = make_fs(t, 2);
  Options o;
  o.file_mode = 0440;
  o.dir_mode = 0750;
  o.uid = 1234;
  o.gid = 99;
  Filesystem mount(tensorblob::open_store(t / "b"), o);
  auto v = mount.view();
  struct stat file = v->attributes(*v->names().lookup("000000.bin"), 16);
  CHECK(file.st_mode == (S_IFREG | 0440));
  CHECK(file.st_uid == 1234);
  CHECK(file.st_gid == 99);
  CHECK(file.st_mtim.tv_sec > 1'700'000'000);
  struct stat root = v->attributes(Node{NodeKind::kRoot}, 1);
  CHECK(root.st_mode == (S_IFDIR | 0750));
  CHECK(root.st_ino == 1);
}

TEST_CASE("writable and verify_on_read are refused together") {
  TempDir t;
  make_fs(t, 2);
  Options o;
  o.writable = true;
  o.live = true;
  o.verify_on_read = true;
  CHECK_THROWS_WITH(Filesystem(tensorblob::open_store(t / "b"), o), Catch::Contains("verify_on_read"));
}
