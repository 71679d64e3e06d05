// The LRU of block mappings, alone and under concurrent readers.
#include "block_cache.h"

#include <fcntl.h>

#include <cerrno>

#include <catch2/catch.hpp>
#include <random>
#include <thread>

#include "tensorblob/blob.h"
#include "tensorblob/storage.h"
#include "test_util.h"

using namespace tensorblob;
using testutil::TempDir;

TEST_CASE("the cache keeps the most recently used blocks up to its capacity") {
  TempDir t;
  testutil::write_file(t / "f", std::string(4096, 'x'));
  auto dir = open_posix_storage(t.path());
  int loads = 0;
  auto loader = [&]() -> std::shared_ptr<ReadableFile> {
    ++loads;
    return dir->open("f");
  };
  int keys[3];
  BlockCache c(2);
  c.get(&keys[0], loader);
  c.get(&keys[1], loader);
  c.get(&keys[0], loader);  // 0 is now the most recent
  CHECK(loads == 2);
  c.get(&keys[2], loader);  // evicts 1
  CHECK(c.size() == 2);
  c.get(&keys[0], loader);
  CHECK(loads == 3);
  c.get(&keys[1], loader);
  CHECK(loads == 4);
  c.erase(&keys[1]);
  CHECK(c.size() == 1);
  c.clear();
  CHECK(c.size() == 0);
}

TEST_CASE("out of descriptors, the cache closes the files no reader holds and tries again") {
  TempDir t;
  testutil::write_file(t / "f", std::string(4096, 'x'));
  auto dir = open_posix_storage(t.path());
  int keys[4];
  BlockCache c(4);
  auto held = c.get(&keys[0], [&] { return std::shared_ptr<ReadableFile>(dir->open("f")); });
  c.get(&keys[1], [&] { return std::shared_ptr<ReadableFile>(dir->open("f")); });
  c.get(&keys[2], [&] { return std::shared_ptr<ReadableFile>(dir->open("f")); });
  int calls = 0;
  auto file = c.get(&keys[3], [&]() -> std::shared_ptr<ReadableFile> {
    if (++calls == 1) throw Error(Errc::kIo, "f: open: Too many open files", EMFILE);
    return dir->open("f");
  });
  CHECK(calls == 2);
  CHECK(file);
  CHECK(c.size() == 2);  // the two idle files went; the one a reader holds stayed
}

TEST_CASE("the default bound is vm.max_map_count / 16") {
  size_t n = default_max_cached_blocks();
  CHECK(n >= 1);
  CHECK(n <= (1u << 28));
}

TEST_CASE("reads under a tiny cache evict and remap blocks yet return the right data") {
  TempDir t;
  OpenOptions o = testutil::f32_options({4}, 2);
  o.max_cached_blocks = 2;
  Blob b = Blob::open(t / "b", "w+", o);
  b.write(testutil::iota_f32(20, {4}));
  for (int64_t i = 0; i < 20; ++i) CHECK(testutil::first(b.get((i * 7) % 20)) == ((i * 7) % 20) * 1000);
  CHECK(b.cached_blocks() == 2);
}

TEST_CASE("many reader threads share one blob and its cache") {
  TempDir t;
  const int64_t n = 4000;
  {
    Blob w = Blob::open(t / "b", "w", testutil::f32_options({16}, 37));
    w.write(testutil::iota_f32(n, {16}));
  }
  OpenOptions o;
  o.max_cached_blocks = 3;  // far fewer than the 109 blocks: constant eviction
  Blob b = Blob::open(t / "b", "r", o);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < 8; ++k) {
    threads.emplace_back([&, k] {
      std::mt19937_64 rng(k);
      for (int it = 0; it < 3000; ++it) {
        int64_t i = static_cast<int64_t>(rng() % n);
        switch (it % 3) {
          case 0: {
            Tensor x = b.get(i);
            if (x.values<float>()[15] != i * 1000 + 15) ++bad;
            break;
          }
          case 1: {
            ItemView v = b.item_view(i);
            if (reinterpret_cast<const float*>(v.data)[3] != i * 1000 + 3) ++bad;
            break;
          }
          default: {
            std::vector<int64_t> idx = {i, (i * 31) % n, n - 1 - i};
            Tensor g = b.gather(idx);
            auto v = g.values<float>();
            if (v[0] != i * 1000 || v[16] != ((i * 31) % n) * 1000 || v[32] != (n - 1 - i) * 1000) ++bad;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(bad == 0);
  CHECK(b.cached_blocks() <= 3);
}
