// The small commands: info, cat, truncate, extend.
#include <unistd.h>

#include <cstdio>

#include "commands.h"
#include "progress.h"
#include "tensorblob/blob.h"
#include "tensorblob/dataset.h"
#include "tensorblob/error.h"

namespace tblob {

int cmd_info(const ParsedArgs& args) {
  auto ds = tensorblob::open_dataset(expect_positional(args, 1, "info")[0]);
  std::fputs(ds->meta_yaml(tensorblob::NamingRules{}).c_str(), stdout);
  return kExitOk;
}

int cmd_cat(const ParsedArgs& args) {
  const auto& pos = expect_positional(args, 2, "cat");
  auto ds = tensorblob::open_dataset(pos[0]);
  int64_t i = parse_int(pos[1], "INDEX");
  if (i < 0) i += ds->count();
  if (i < 0 || i >= ds->count())
    throw UsageError("index " + pos[1] + " out of range for " + std::to_string(ds->count()) + " items");
  uint64_t begin = ds->item_offset(i), end = ds->item_offset(i + 1);
  std::vector<std::byte> buf(1 << 20);
  for (uint64_t off = begin; off < end;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - off));
    ds->read(off, n, buf.data());
    if (std::fwrite(buf.data(), 1, n, stdout) != n)
      throw tensorblob::Error(tensorblob::Errc::kIo, "stdout: write failed");
    off += n;
  }
  if (std::fflush(stdout) != 0) throw tensorblob::Error(tensorblob::Errc::kIo, "stdout: write failed");
  return kExitOk;
}

int cmd_truncate(const ParsedArgs& args) {
  const auto& pos = expect_positional(args, 2, "truncate");
  int64_t n = parse_int(pos[1], "N");
  tensorblob::Blob b = tensorblob::Blob::open(pos[0], "r+");
  if (n < 0 || n > b.size())
    throw UsageError("N must be between 0 and the blob's size " + std::to_string(b.size()) + ", got " + pos[1]);
  b.truncate(n);
  b.close();
  return kExitOk;
}

int cmd_extend(const ParsedArgs& args) {
  const auto& pos = expect_positional(args, 2, "extend");
  tensorblob::Blob other = tensorblob::Blob::open(pos[1], "r");
  tensorblob::Blob b = tensorblob::Blob::open(pos[0], "a");
  Progress progress("extend", static_cast<uint64_t>(other.size() * other.item_bytes()));
  b.extend(other, args.has("--keep-order"), [&](uint64_t n) { progress.advance(n); });
  b.close();
  return kExitOk;
}

}  // namespace tblob
