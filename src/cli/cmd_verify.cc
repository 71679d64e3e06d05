#include <cstdio>

#include "commands.h"
#include "progress.h"
#include "tensorblob/dataset.h"
#include "tensorblob/error.h"
#include "tensorblob/ragged.h"
#include "tensorblob/verify.h"

namespace tblob {

namespace {

uint64_t total_bytes(const std::string& path) {
  auto ds = tensorblob::open_dataset(path);
  return ds->item_offset(ds->count());
}

}  // namespace

int cmd_verify(const ParsedArgs& args) {
  const std::string path = expect_positional(args, 1, "verify")[0];
  const bool blob = tensorblob::names_blob(path);
  Progress progress(args.has("--update") ? "hashing" : "verify", total_bytes(path));
  auto tick = [&](uint64_t n) { progress.advance(n); };

  if (args.has("--update")) {
    if (blob) tensorblob::update_blob_item_hashes(path, tick);
    else tensorblob::update_ragged_item_hashes(path, tick);
    std::printf("%s: per-item hashes recorded\n", path.c_str());
    return kExitOk;
  }
  tensorblob::VerifyReport r = blob ? tensorblob::verify_blob(path, tick) : tensorblob::verify_ragged(path, tick);
  const std::string where = blob ? path : tensorblob::ragged_paths(path).dat;
  if (r.ok) {
    if (blob)
      std::printf("%s: ok, %lld tensors read%s\n", path.c_str(), static_cast<long long>(r.items_checked),
                  r.has_item_hashes ? " and matched their recorded hashes"
                  : r.stale_item_hashes ? "; recorded hashes are stale (tblob verify --update)"
                                        : "; no per-tensor hashes recorded (tblob verify --update)");
    else
      std::printf("%s: ok, hash %s over %lld items\n", path.c_str(), r.computed.c_str(),
                  static_cast<long long>(r.items_checked));
    return kExitOk;
  }
  if (r.first_bad)
    std::fprintf(stderr, "tblob: %s: %s %lld does not match its recorded hash%s\n", where.c_str(),
                 blob ? "tensor" : "item", static_cast<long long>(*r.first_bad),
                 blob ? "" : (" (content hash " + r.computed + ", stored " + r.stored + ")").c_str());
  else
    std::fprintf(stderr, "tblob: %s: content hash %s does not match the stored %s (no per-item hashes to name the item)\n",
                 where.c_str(), r.computed.c_str(), r.stored.c_str());
  return kExitDataWrong;
}

}  // namespace tblob
