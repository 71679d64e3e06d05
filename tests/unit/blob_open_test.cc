// Open modes, following tensorblob's test_open.py / test_blob_modes.py.
#include <catch2/catch.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "tensorblob/blob.h"
#include "tensorblob/error.h"
#include "test_util.h"

using namespace tensorblob;
using testutil::TempDir;

TEST_CASE("open mode strings parse to what each mode allows") {
  auto m = parse_open_mode("r");
  CHECK((m.readable && !m.writable && !m.append && !m.truncate && m.must_exist));
  m = parse_open_mode("w");
  CHECK((!m.readable && m.writable && m.truncate && !m.must_exist));
  m = parse_open_mode("a");
  CHECK((!m.readable && m.writable && m.append && m.must_exist));
  m = parse_open_mode("r+");
  CHECK((m.readable && m.writable && !m.append && m.must_exist));
  m = parse_open_mode("w+");
  CHECK((m.readable && m.writable && m.truncate));
  m = parse_open_mode("a+");
  CHECK((m.readable && m.writable && m.append && m.must_exist));
  for (const char* bad : {"", "x", "rw", "r++", "+r", "ra", "wb", "R", "r+ "}) {
    INFO(bad);
    CHECK_THROWS_WITH(parse_open_mode(bad), Catch::Contains("invalid open mode"));
  }
}

TEST_CASE("w creates a blob with .conf and an empty .stat and no block") {
  TempDir t;
  std::string p = t / "sub/dir/blob";
  Blob b = Blob::open(p, "w", testutil::f32_options({2, 3}, 4));
  CHECK(b.size() == 0);
  CHECK(b.dtype() == DType::kFloat32);
  CHECK(b.item_bytes() == 24);
  CHECK(testutil::read_file(p + "/.stat") == R"({"len":0,"bds":[]})");
  CHECK(testutil::read_file(p + "/.conf").size() == 194);
  CHECK(testutil::block_files(p).empty());
}

TEST_CASE("a new blob needs dtype and shape, and valid ones") {
  TempDir t;
  OpenOptions o;
  CHECK_THROWS_WITH(Blob::open(t / "b", "w", o), Catch::Contains("needs a dtype and a shape"));
  o.dtype = "float32";
  CHECK_THROWS_WITH(Blob::open(t / "b", "w", o), Catch::Contains("needs a dtype and a shape"));
  o.shape = Shape{-3};
  CHECK_THROWS_WITH(Blob::open(t / "b", "w", o), Catch::Contains("dimension below 1"));
  o.shape = Shape{3};
  o.dtype = "qint8";
  CHECK_THROWS_WITH(Blob::open(t / "b", "w", o), Catch::Contains("quantized"));
  o.dtype = "float32";
  o.block_size = 0;
  testutil::check_error([&] { Blob::open(t / "c", "w", o); }, Errc::kInvalidArgument, "block_size");
}

TEST_CASE("r, r+, a and a+ on a missing blob are errors that name it") {
  TempDir t;
  for (const char* mode : {"r", "r+", "a", "a+"}) {
    INFO(mode);
    testutil::check_error([&] { Blob::open(t / "missing", mode); }, Errc::kNotFound, t / "missing");
    CHECK(!testutil::fs::exists(t / "missing"));
  }
}

TEST_CASE("w on an existing blob empties it and keeps its config") {
  TempDir t;
  std::string p = t / "b";
  {
    Blob b = Blob::open(p, "w", testutil::f32_options({2}, 2));
    b.write(testutil::iota_f32(5, {2}));
  }
  REQUIRE(testutil::block_files(p).size() == 3);
  OpenOptions other;
  other.dtype = "int64";
  other.shape = Shape{9};
  Blob b = Blob::open(p, "w", other);
  CHECK(b.dtype() == DType::kFloat32);
  CHECK(b.shape() == Shape{2});
  CHECK(b.size() == 0);
  CHECK(testutil::block_files(p).empty());
  CHECK(testutil::read_file(p + "/.stat") == R"({"len":0,"bds":[]})");
}

TEST_CASE("w in an existing empty directory creates the blob there") {
  TempDir t;
  Blob b = Blob::open(t.path(), "w", testutil::f32_options({1}, 1));
  CHECK(testutil::fs::exists(t / ".conf"));
}

TEST_CASE("cursor starts at 0 in r, r+, w, w+ and at the end in a, a+") {
  TempDir t;
  std::string p = t / "b";
  { Blob::open(p, "w", testutil::f32_options({2}, 4)).write(testutil::iota_f32(6, {2})); }
  for (const char* mode : {"r", "r+"}) CHECK(Blob::open(p, mode).tell() == 0);
  for (const char* mode : {"a", "a+"}) CHECK(Blob::open(p, mode).tell() == 6);
  CHECK(Blob::open(p, "w+").tell() == 0);
}

TEST_CASE("reading a write-only blob and writing a read-only one are refused") {
  TempDir t;
  std::string p = t / "b";
  {
    Blob w = Blob::open(p, "w", testutil::f32_options({2}, 4));
    w.write(testutil::iota_f32(3, {2}));
    CHECK_THROWS_WITH(w.read(), Catch::Contains("not open for reading"));
    CHECK_THROWS_WITH(w.get(0), Catch::Contains("not open for reading"));
    CHECK_THROWS_WITH(w.next(), Catch::Contains("not open for reading"));
  }
  {
    Blob a = Blob::open(p, "a");
    CHECK_THROWS_WITH(a.slice(0, 1), Catch::Contains("not open for reading"));
  }
  Blob r = Blob::open(p, "r");
  testutil::check_error([&] { r.write(testutil::iota_f32(1, {2})); }, Errc::kNotPermitted, "not open for writing (mode 'r')");
  CHECK_THROWS_WITH(r.truncate(0), Catch::Contains("not open for writing"));
  CHECK_THROWS_WITH(r.flush(), Catch::Contains("not open for writing"));
  CHECK(r.size() == 3);
}

TEST_CASE("a closed blob refuses every operation") {
  TempDir t;
  Blob b = Blob::open(t / "b", "w+", testutil::f32_options({2}, 4));
  b.close();
  b.close();  // idempotent
  CHECK(b.closed());
  CHECK_THROWS_WITH(b.tell(), Catch::Contains("closed blob"));
  CHECK_THROWS_WITH(b.read(), Catch::Contains("closed blob"));
  CHECK_THROWS_WITH(b.write(testutil::iota_f32(1, {2})), Catch::Contains("closed blob"));
}

TEST_CASE("a second writer is refused while readers are not") {
  TempDir t;
  std::string p = t / "b";
  Blob w = Blob::open(p, "w", testutil::f32_options({2}, 4));
  w.write(testutil::iota_f32(2, {2}));
  w.flush();
  for (const char* mode : {"w", "a", "r+", "a+", "w+"}) {
    INFO(mode);
    testutil::check_error([&] { Blob::open(p, mode); }, Errc::kBusy, "another writer");
  }
  Blob r = Blob::open(p, "r");
  CHECK(r.size() == 2);
  w.close();
  Blob w2 = Blob::open(p, "a");  // the lock is released on close
  CHECK(w2.size() == 2);
}

TEST_CASE("the writer lock also holds across processes") {
  TempDir t;
  std::string p = t / "b";
  Blob w = Blob::open(p, "w", testutil::f32_options({2}, 4));
  pid_t pid = fork();
  if (pid == 0) {
    int code = 0;
    try {
      Blob::open(p, "a");
    } catch (const Error& e) {
      code = e.code() == Errc::kBusy ? 7 : 1;
    }
    _exit(code);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WEXITSTATUS(status) == 7);
}

TEST_CASE("a path that is a file, not a directory, is refused") {
  TempDir t;
  testutil::write_file(t / "f", "x");
  CHECK_THROWS_WITH(Blob::open(t / "f", "r"), Catch::Contains("not a blob directory"));
  CHECK_THROWS_WITH(Blob::open(t / "f", "w", testutil::f32_options({1}, 1)), Catch::Contains("not a blob directory"));
}
