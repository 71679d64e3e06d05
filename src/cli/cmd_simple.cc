#include <cstdio>

#include "commands.h"
#include "output.h"
#include "progress.h"
#include "tensorblob/blob.h"
#include "tensorblob/catalog.h"
#include "tensorblob/error.h"
#include "tensorblob/presentation.h"
#include "tensorblob/storage.h"
#include "tensorblob/store.h"
#include "tensorblob/tensordb.h"

namespace tblob {

int cmd_info(const ParsedArgs& args) {
  const std::string& path = expect_positional(args, 1, "info")[0];
  if (!tensorblob::is_s3_url(path)) {
    const tensorblob::StoreKind kind = tensorblob::store_kind(path);
    if (kind == tensorblob::StoreKind::kTensorDB) {
      write_stdout(tensorblob::db_meta_yaml(tensorblob::TensorDB::open(path, "r")));
      return kExitOk;
    }
    // A plain directory is a data directory: the index of its stores.
    if (kind == tensorblob::StoreKind::kDirectory) {
      write_stdout(tensorblob::index_yaml(tensorblob::scan_catalog(path), tensorblob::absolute_path(path)));
      return kExitOk;
    }
  }
  auto store = tensorblob::open_store(path);
  write_stdout(store->read([](const tensorblob::Dataset& ds) { return tensorblob::meta_yaml(ds, {}); }));
  return kExitOk;
}

int cmd_cat(const ParsedArgs& args) {
  const auto& pos = expect_positional(args, 2, "cat");
  auto store = tensorblob::open_store(pos[0]);
  const int64_t index = parse_int(pos[1], "INDEX");
  // Only the first read can find a block gone (the file it opens then stays
  // open), so a retry never repeats output.
  store->read([&](const tensorblob::Dataset& ds) {
    int64_t i = index < 0 ? index + ds.count() : index;
    if (i < 0 || i >= ds.count())
      throw UsageError("index " + pos[1] + " out of range for " + std::to_string(ds.count()) + " items");
    const uint64_t begin = ds.item_offset(i), end = ds.item_offset(i + 1);
    std::vector<std::byte> buf(1 << 20);
    for (uint64_t off = begin; off < end;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - off));
      ds.read(off, n, buf.data());
      write_stdout(buf.data(), n);
      off += n;
    }
  });
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
