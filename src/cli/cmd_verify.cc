#include <cstdio>

#include "commands.h"
#include "output.h"
#include "progress.h"
#include "tensorblob/error.h"
#include "tensorblob/ragged.h"
#include "tensorblob/store.h"
#include "tensorblob/verify.h"

namespace tblob {

int cmd_verify(const ParsedArgs& args) {
  const std::string path = expect_positional(args, 1, "verify")[0];
  const bool blob = tensorblob::store_kind(path) != tensorblob::StoreKind::kRagged &&
                    tensorblob::store_kind(path) != tensorblob::StoreKind::kNone;
  auto ds = tensorblob::open_dataset(path);
  Progress progress(args.has("--update") ? "hashing" : "verify", ds->item_offset(ds->count()));
  auto tick = [&](uint64_t n) { progress.advance(n); };

  if (args.has("--update")) {
    if (blob) tensorblob::update_blob_item_hashes(path, tick);
    else tensorblob::update_ragged_item_hashes(path, tick);
    write_stdout(path + ": per-item hashes recorded\n");
    return kExitOk;
  }
  tensorblob::VerifyReport r = blob ? tensorblob::verify_blob(path, tick) : tensorblob::verify_ragged(path, tick);
  const std::string where = blob ? path : tensorblob::ragged_paths(path).dat;
  if (r.item_hashes.starts_with("damaged"))
    std::fprintf(stderr, "tblob: warning: per-item hashes %s\n", r.item_hashes.c_str());
  if (!r.strays.empty()) {
    std::string names;
    for (size_t k = 0; k < r.strays.size() && k < 5; ++k) names += (k ? ", " : "") + r.strays[k];
    if (r.strays.size() > 5) names += ", ...";
    std::fprintf(stderr, "tblob: warning: %s: %zu files (%llu bytes) that no commit lists: %s "
                         "(ours are removed by the next writer to open the blob)\n",
                 path.c_str(), r.strays.size(), static_cast<unsigned long long>(r.stray_bytes), names.c_str());
  }
  if (r.ok) {
    if (blob)
      write_stdout(path + ": ok, " + std::to_string(r.items_checked) + " tensors read" +
                   (r.has_item_hashes ? " and matched their recorded hashes"
                    : r.stale_item_hashes ? "; recorded hashes are stale (tblob verify --update)"
                                          : "; no per-tensor hashes recorded (tblob verify --update)") +
                   "\n");
    else
      write_stdout(path + ": ok, hash " + r.computed + " over " + std::to_string(r.items_checked) + " items\n");
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
