// Snapshots: a reader keeps reading exactly its commit's bytes while a
// writer appends, truncates, overwrites and commits, in this process or in
// another; a reader whose block another process's commit replaced reloads.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>

#include "tensorblob/blob.h"
#include "tensorblob/error.h"
#include "tensorblob/store.h"
#include "test_util.h"

using namespace tensorblob;
using testutil::TempDir;
namespace fs = std::filesystem;

namespace {

// Every byte a snapshot holds, read through the Dataset interface.
std::vector<std::byte> all_bytes(const Dataset& d) {
  std::vector<std::byte> out(d.item_offset(d.count()));
  d.read(0, out.size(), out.data());
  return out;
}

std::vector<std::byte> all_bytes(const Blob& b) {
  std::vector<std::byte> out(static_cast<size_t>(b.size() * b.item_bytes()));
  b.read_bytes(0, static_cast<int64_t>(out.size()), out.data());
  return out;
}

std::set<std::string> block_names(const std::string& dir) {
  auto v = testutil::block_files(dir);
  return {v.begin(), v.end()};
}

// The writer's three kinds of change and a commit after each.
void change_everything(const std::string& p) {
  Blob w = Blob::open(p, "r+");
  w.seek(3);
  w.write(testutil::iota_f32(2, {4}, 0.25f));  // overwrite tensors 3, 4
  w.flush();
  w.seek(0, Whence::kEnd);
  w.write(testutil::iota_f32(9, {4}, 7e5f));   // append into the last block and new ones
  w.flush();
  w.truncate(6);                               // cut inside block 1
  w.seek(6);
  w.write(testutil::iota_f32(5, {4}, 9e5f));   // and write over what the cut left
  w.close();
}

// Runs `before` in a child process, then `write` here, then `after` in the
// child (which keeps what `before` opened). Returns the child's exit code:
// after()'s, or 3 if it threw.
int reader_around_writer(const std::function<void()>& before, const std::function<void()>& write,
                         const std::function<int()>& after) {
  int to_child[2], to_parent[2];
  REQUIRE(::pipe(to_child) == 0);
  REQUIRE(::pipe(to_parent) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int code = 3;
    try {
      before();
      char c = 'r';
      if (::write(to_parent[1], &c, 1) != 1 || ::read(to_child[0], &c, 1) != 1) _exit(4);
      code = after();
    } catch (...) {
    }
    _exit(code);
  }
  char c;
  REQUIRE(::read(to_parent[0], &c, 1) == 1);
  write();
  REQUIRE(::write(to_child[1], &c, 1) == 1);
  int status = 0;
  ::waitpid(pid, &status, 0);
  for (int fd : {to_child[0], to_child[1], to_parent[0], to_parent[1]}) ::close(fd);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("a reader's snapshot keeps its bytes while a writer in this process changes and commits") {
  TempDir t;
  const std::string p = t / "b";
  {
    Blob w = Blob::open(p, "w", testutil::f32_options({4}, 4));
    w.write(testutil::iota_f32(10, {4}));
  }
  Blob r = Blob::open(p, "r");
  std::shared_ptr<const Dataset> snap = open_dataset(p);
  const auto before = all_bytes(*snap);
  REQUIRE(all_bytes(r) == before);
  change_everything(p);
  // Neither the Blob nor the snapshot moved: same size, same bytes, though
  // every block they read was replaced or dropped by the writer's commits.
  CHECK(r.size() == 10);
  CHECK(all_bytes(r) == before);
  CHECK(snap->count() == 10);
  CHECK(all_bytes(*snap) == before);
  // A new reader sees the last commit.
  Blob fresh = Blob::open(p, "r");
  CHECK(fresh.size() == 11);
  CHECK(testutil::first(fresh.get(3)) == 0.25f);
  CHECK(testutil::first(fresh.get(6)) == 9e5f);
  CHECK(testutil::first(fresh.get(10)) == 9e5f + 4000);
}

TEST_CASE("an overwrite copies the block under a new name; the old file goes once no snapshot holds it") {
  TempDir t;
  const std::string p = t / "b";
  {
    Blob w = Blob::open(p, "w", testutil::f32_options({4}, 4));
    w.write(testutil::iota_f32(10, {4}));
  }
  const std::string old_block = testutil::block_path(p, 1), first_block = testutil::block_path(p, 0);
  std::shared_ptr<const Dataset> held = open_dataset(p);
  {
    Blob w = Blob::open(p, "r+");
    w.seek(5);
    w.write(testutil::iota_f32(1, {4}, 0.5f));
    w.close();
  }
  const std::string new_block = testutil::block_path(p, 1);
  CHECK(new_block != old_block);                 // a changed block has a new name
  CHECK(testutil::block_path(p, 0) == first_block);  // blocks not written keep theirs
  CHECK(fs::exists(old_block));                  // a snapshot of this process still reads it
  held.reset();
  CHECK(!fs::exists(old_block));                 // and then it goes
  CHECK(block_names(p).size() == 3);
  // Appends never copy: the last block keeps its name.
  const std::string last = testutil::block_path(p, 2);
  {
    Blob w = Blob::open(p, "a");
    w.write(testutil::iota_f32(1, {4}));
    w.close();
  }
  CHECK(testutil::block_path(p, 2) == last);
}

TEST_CASE("a reader in another process keeps its snapshot's bytes while this process writes") {
  TempDir t;
  const std::string p = t / "b";
  {
    Blob w = Blob::open(p, "w", testutil::f32_options({4}, 4));
    w.write(testutil::iota_f32(10, {4}));
  }
  std::optional<Blob> r;
  std::vector<std::byte> before;
  CHECK(reader_around_writer([&] {
          r.emplace(Blob::open(p, "r"));  // reads everything first
          before = all_bytes(*r);
        },
        [&] { change_everything(p); },
        [&] { return r->size() == 10 && all_bytes(*r) == before ? 0 : 1; }) == 0);
}

TEST_CASE("a reader in another process whose block was replaced reloads and reads the new commit") {
  TempDir t;
  const std::string p = t / "b";
  {
    Blob w = Blob::open(p, "w", testutil::f32_options({4}, 4));
    w.write(testutil::iota_f32(10, {4}));
  }
  std::optional<Blob> r;
  // The reader reads block 0 only, so block 1 is never opened before the
  // writer replaces it; its read must then come from the new commit.
  CHECK(reader_around_writer(
            [&] {
              r.emplace(Blob::open(p, "r"));
              if (testutil::first(r->get(0)) != 0) _exit(5);
            },
            [&] {
              Blob w = Blob::open(p, "r+");
              w.seek(5);
              w.write(testutil::iota_f32(1, {4}, 0.5f));
              w.close();
            },
            [&] { return testutil::first(r->get(5)) == 0.5f && r->size() == 10 ? 0 : 1; }) == 0);
}

TEST_CASE("a store reports which tensors a commit rewrote, block by block") {
  TempDir t;
  const std::string p = t / "b";
  {
    Blob w = Blob::open(p, "w", testutil::f32_options({4}, 4));
    w.write(testutil::iota_f32(10, {4}));
  }
  auto store = open_store(p);
  CHECK(!store->refresh());  // nothing changed
  {
    Blob w = Blob::open(p, "r+");
    w.seek(5);
    w.write(testutil::iota_f32(1, {4}, 0.5f));  // block 1: tensors 4..7
    w.seek(0, Whence::kEnd);
    w.write(testutil::iota_f32(3, {4}));        // append: 10..12, no rewrite
    w.close();
  }
  auto change = store->refresh();
  REQUIRE(change);
  CHECK(change->before->count() == 10);
  CHECK(change->after->count() == 13);
  CHECK(change->rewritten == std::vector<std::pair<int64_t, int64_t>>{{4, 8}});
  CHECK(store->snapshot() == change->after);
  CHECK(!store->refresh());
}

TEST_CASE("a failed write leaves the size, the cursor and the committed bytes as they were") {
  TempDir t;
  const std::string p = t / "b";
  {
    Blob w = Blob::open(p, "w", testutil::f32_options({64}, 4));  // 256-byte tensors, 1 KiB blocks
    w.write(testutil::iota_f32(10, {64}));
  }
  Blob w = Blob::open(p, "r+");
  w.seek(2);
  const auto committed = all_bytes(w);
  const auto entries = block_names(p);
  // Files may not grow past 512 bytes: the copy of block 0 (a committed
  // block, copied before its tensors change) fails with EFBIG.
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
  rlimit tiny = old;
  tiny.rlim_cur = 512;
  ::signal(SIGXFSZ, SIG_IGN);
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &tiny) == 0);
  bool threw = false;
  try {
    w.write(testutil::iota_f32(5, {64}, 0.5f));  // tensors 2..6: blocks 0 and 1, both committed
  } catch (const Error& e) {
    threw = true;
    CHECK(e.sys_errno() == EFBIG);
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, SIG_DFL);
  CHECK(threw);
  CHECK(w.size() == 10);
  CHECK(w.tell() == 2);
  CHECK(all_bytes(w) == committed);
  CHECK(block_names(p) == entries);  // the copies it made are gone
  w.close();
  CHECK(all_bytes(Blob::open(p, "r")) == committed);
}

TEST_CASE("a reader retried on a shorter commit gets an error, never bytes past its end") {
  TempDir t;
  const std::string p = t / "b";
  {
    OpenOptions o;
    o.dtype = "float32";
    o.shape = Shape{4};
    o.block_size = 10;
    Blob w = Blob::open(p, "w", o);
    w.write(testutil::iota_f32(1000, {4}));
  }
  Blob r = Blob::open(p, "r");
  CHECK(r.size() == 1000);
  // Another process cuts the blob to 5 tensors and removes the blocks it
  // no longer lists (what tblob truncate does once nothing holds them).
  BlobStatus st = parse_blob_status(testutil::read_file(p + "/.stat"), "s");
  for (size_t k = 1; k < st.blocks.size(); ++k) fs::remove(p + "/" + st.blocks[k]);
  st.len = 5;
  st.blocks.resize(1);
  testutil::write_file(p + "/.stat", format_blob_status(st));
  // Tensor 900's block is gone; the reload finds a commit of 5 tensors.
  CHECK_THROWS_AS(r.get(900), Error);
  std::vector<std::byte> buf(16 * 100);
  CHECK_THROWS_AS(r.read_bytes(900 * 16, 16 * 100, buf.data()), Error);
}
