#include "commands.h"

namespace tblob {

const std::vector<std::string>& expect_positional(const ParsedArgs& args, size_t n, const char* command) {
  if (args.positional.size() != n)
    throw UsageError("expected " + std::to_string(n) + " argument" + (n == 1 ? "" : "s") + ", got " +
                     std::to_string(args.positional.size()));
  (void)command;
  return args.positional;
}

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"create", "create an empty blob",
       "usage: tblob create DIR --dtype DT --shape D0,D1,... [--block-size N]\n\n"
       "Creates an empty blob directory. DT is a torch dtype name (float32, bfloat16,\n"
       "int64, bool, ... or an alias such as float, long); --shape is the shape of one\n"
       "tensor ('' or () for scalars). --block-size is tensors per block file (8192).\n"
       "Refuses a DIR that already holds a blob.\n",
       {{}, {"--dtype", "--shape", "--block-size"}},
       cmd_create},
      {"import", "append tensors from .npy or raw files",
       "usage: tblob import DIR FILE... [--create] [--dtype DT --shape D0,D1,...]\n\n"
       "Appends every tensor of each FILE, in order. A .npy file holds a batch of shape\n"
       "(n, *shape) or a single tensor of the blob's shape, in C order with the blob's\n"
       "dtype (any .npy format version; Fortran-order and object arrays are refused).\n"
       "A file without the .npy magic is raw C-order bytes of --dtype/--shape tensors.\n"
       "--create makes DIR if it is not a blob yet, taking dtype and shape from\n"
       "--dtype/--shape or else from the first .npy file (its shape without the first\n"
       "axis). All headers are checked before anything is written; on any error the\n"
       "blob keeps its previous contents.\n",
       {{"--create"}, {"--dtype", "--shape", "--block-size"}},
       cmd_import},
      {"export", "write tensors to a .npy file",
       "usage: tblob export PATH OUT.npy [--range A:B] [--field NAME]\n\n"
       "Writes items A..B-1 (a Python slice: A:B, :B, A:, -10:) of the blob or ragged\n"
       "dataset at PATH to OUT.npy, which numpy.load reads: shape (B-A, *shape) for a\n"
       "blob, the items' rows concatenated (rows, *trail) for a ragged dataset. For a\n"
       "TensorDB, --field NAME exports that field's rows, up to the database's\n"
       "committed row count. OUT.npy appears whole or not at all. dtypes numpy lacks\n"
       "(bfloat16, float8) cannot be exported.\n",
       {{}, {"--range", "--field"}},
       cmd_export},
      {"info", "describe a blob, ragged dataset or TensorDB as YAML (the mount's meta.yaml)",
       "usage: tblob info PATH\n\nPrints the YAML document blobfs shows as meta.yaml. PATH is a blob directory,\n"
       "a ragged dataset (x, x.dat, x.json or x.starts.npy) or a TensorDB directory\n"
       "(its committed rows and each field's dtype and shape). A plain directory is a\n"
       "data directory: its index, every store below it with kind, count, dtype, shape\n"
       "and size (damaged ones with their error; symbolic links are not followed).\n", {{}, {}}, cmd_info},
      {"cat", "raw bytes of one tensor on stdout",
       "usage: tblob cat PATH INDEX\n\nWrites item INDEX (negative counts from the end) of a blob or ragged dataset\n"
       "to stdout as raw C-order bytes, the same as NNNNNN.bin in a mount.\n",
       {{}, {}},
       cmd_cat},
      {"verify", "check content hashes; name the first bad item",
       "usage: tblob verify PATH [--update]\n\n"
       "A ragged dataset (PATH is its base or any of its files): recomputes the\n"
       "xxh3-128 content hash picomap stores and compares. A blob directory: reads every\n"
       "tensor and compares each with its recorded hash, if any. When per-item hashes\n"
       "are recorded (BASE.hashes.npy, DIR/.hashes.npy), a mismatch names the first\n"
       "damaged item. --update records them from the data as it is now (a ragged\n"
       "dataset must still match its stored hash). Exit 0 ok, 1 the data is wrong.\n",
       {{"--update"}, {}},
       cmd_verify},
      {"build", "build a ragged dataset (picomap layout) from .npy files",
       "usage: tblob build BASE FILE.npy...\n\n"
       "Writes BASE.dat, BASE.starts.npy and BASE.json exactly as picomap's build_map\n"
       "does (its hash included), one item per FILE in order, plus BASE.hashes.npy\n"
       "(per-item hashes picomap ignores). Items must share dtype and trailing shape and\n"
       "have at least one row and one element; anything else is refused before\n"
       "writing. The suffixes are appended to BASE as given: picomap instead replaces\n"
       "BASE's last suffix (its target v1.2 writes v1.dat). The three files appear\n"
       "together: an interrupted publish is finished by the next open.\n",
       {{}, {}},
       cmd_build},
      {"truncate", "cut a blob to N tensors",
       "usage: tblob truncate DIR N\n\nKeeps the first N tensors and deletes whole block files past them. N must not\n"
       "exceed the blob's size.\n",
       {{}, {}},
       cmd_truncate},
      {"extend", "append every tensor of another blob",
       "usage: tblob extend DIR OTHER [--keep-order]\n\n"
       "Appends OTHER's tensors to DIR (same dtype and shape). Without --keep-order it\n"
       "takes tensorblob's fast path: OTHER's full blocks are copied as files, then\n"
       "DIR's partial last block and OTHER's are written after them, so tensor order\n"
       "changes unless DIR's size is a multiple of its block size. --keep-order copies\n"
       "tensor by tensor and keeps order.\n",
       {{"--keep-order"}, {}},
       cmd_extend},
      {"push", "publish a local store to S3",
       "usage: tblob push PATH s3://BUCKET/PREFIX [--parallel N] [--delete]\n\n"
       "Uploads the blob directory (or ragged dataset) at PATH so that it is the store\n"
       "at s3://BUCKET/PREFIX: its data files first, N at a time (8; large ones in\n"
       "16 MiB parts), then .conf, then .stat last, so a reader never sees a commit\n"
       "naming an object that is not there yet. Files already there with the same\n"
       "content (ETag) are skipped: an interrupted push resumes. --delete then removes\n"
       "block objects the new .stat no longer lists (readers still on the old commit\n"
       "lose them). Endpoint, region and credentials as the AWS tools take them:\n"
       "AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or\n"
       "~/.aws/credentials (AWS_PROFILE).\n",
       {{"--delete"}, {"--parallel"}},
       cmd_push},
      {"pull", "copy a store from S3 to a local directory",
       "usage: tblob pull s3://BUCKET/PREFIX PATH [--parallel N]\n\n"
       "Downloads the store at s3://BUCKET/PREFIX into PATH (created if missing), data\n"
       "files first and .stat last, each file written whole or not at all. Files\n"
       "already there with the same content are skipped: an interrupted pull resumes.\n",
       {{}, {"--parallel"}},
       cmd_pull},
  };
  return table;
}

}  // namespace tblob
