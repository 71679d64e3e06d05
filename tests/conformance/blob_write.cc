// Test tool: a writer of ours that mount tests run beside a mount.
//
//   blob_write DIR append N COMMITS [PAUSE_MS]   N tensors a commit, COMMITS times
//   blob_write DIR overwrite FIRST N SALT        tensors FIRST..FIRST+N-1, one commit
//
// Element j of tensor i is i * 1000 + j (+ SALT for an overwrite), in the
// blob's dtype (int32, int64, float32 or float64), as tests/lib.sh's
// make_blob writes them, so a reader can check any tensor on its own.
// Prints "<unix ns> <count>" after each commit.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "tensorblob/blob.h"
#include "tensorblob/error.h"

using namespace tensorblob;

namespace {

template <typename T>
void fill(std::vector<std::byte>& out, int64_t first, int64_t n, int64_t per, int64_t salt) {
  out.resize(static_cast<size_t>(n * per) * sizeof(T));
  T* p = reinterpret_cast<T*>(out.data());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < per; ++j) p[i * per + j] = static_cast<T>((first + i) * 1000 + j + salt);
}

void tensors(const Blob& b, int64_t first, int64_t n, int64_t salt, std::vector<std::byte>& out) {
  const int64_t per = shape_elements(b.shape());
  switch (b.dtype()) {
    case DType::kInt32: return fill<int32_t>(out, first, n, per, salt);
    case DType::kInt64: return fill<int64_t>(out, first, n, per, salt);
    case DType::kFloat32: return fill<float>(out, first, n, per, salt);
    case DType::kFloat64: return fill<double>(out, first, n, per, salt);
    default: throw Error(Errc::kInvalidArgument, "blob_write: int32, int64, float32 or float64 blobs only");
  }
}

void committed(const Blob& b) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  std::printf("%lld %lld\n", static_cast<long long>(ns), static_cast<long long>(b.size()));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> a(argv + 1, argv + argc);
    std::vector<std::byte> buf;
    if (a.size() >= 4 && a[1] == "append") {
      const int64_t n = std::stoll(a[2]), commits = std::stoll(a[3]);
      const int pause_ms = a.size() > 4 ? std::stoi(a[4]) : 0;
      Blob b = Blob::open(a[0], "a");
      for (int64_t c = 0; c < commits; ++c) {
        tensors(b, b.size(), n, 0, buf);
        b.write_raw(buf.data(), n);
        b.flush();
        committed(b);
        if (pause_ms) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
      }
      b.close();
      return 0;
    }
    if (a.size() == 5 && a[1] == "overwrite") {
      const int64_t first = std::stoll(a[2]), n = std::stoll(a[3]), salt = std::stoll(a[4]);
      Blob b = Blob::open(a[0], "r+");
      tensors(b, first, n, salt, buf);
      b.seek(first);
      b.write_raw(buf.data(), n);
      b.close();
      committed(b);
      return 0;
    }
    std::fprintf(stderr, "usage: blob_write DIR append N COMMITS [PAUSE_MS] | blob_write DIR overwrite FIRST N SALT\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "blob_write: %s\n", e.what());
    return 3;
  }
}
