#include "commands.h"
#include "tensorblob/blob.h"
#include "tensorblob/error.h"
#include "tensorblob/store.h"

namespace tblob {

int cmd_create(const ParsedArgs& args) {
  const std::string dir = expect_positional(args, 1, "create")[0];
  auto dtype = args.get("--dtype");
  auto shape = args.get("--shape");
  if (!dtype || !shape) throw UsageError("--dtype and --shape are required");
  tensorblob::OpenOptions o;
  o.dtype = *dtype;
  o.shape = parse_shape(*shape);
  if (auto bs = args.get("--block-size")) o.block_size = parse_int(*bs, "--block-size");
  if (tensorblob::store_kind(dir) == tensorblob::StoreKind::kBlob)
    throw tensorblob::Error(tensorblob::Errc::kInvalidArgument, dir + ": a blob already exists here");
  tensorblob::Blob::open(dir, "w", o).close();
  return kExitOk;
}

}  // namespace tblob
