// copy_blob SRC DST: reads every tensor of blob SRC and writes them, in order,
// to a new blob DST with the same dtype, shape and block size; for a TensorDB
// SRC, a new TensorDB with the same schema, fields created in SRC's order
// as .conf lists them, and every row appended at once. The conformance tests
// run Python's tensorblob_ref.py compare on SRC and DST.
#include <cstdio>
#include <string>

#include "tensorblob/blob.h"
#include "tensorblob/error.h"
#include "tensorblob/store.h"
#include "tensorblob/tensordb.h"

using namespace tensorblob;

namespace {

void copy_db(const std::string& from, const std::string& to) {
  TensorDB src = TensorDB::open(from, "r");
  DBOptions o;
  o.schema = src.schema();
  o.block_size = src.conf().block_size;
  TensorDB dst = TensorDB::open(to, "w", o);
  if (src.size()) dst.append(src.slice(std::nullopt, std::nullopt));
  dst.close();
}

void copy_blob(const std::string& from, const std::string& to) {
  Blob src = Blob::open(from, "r");
  OpenOptions o;
  o.dtype = std::string(dtype_info(src.dtype()).name);
  o.shape = src.shape();
  o.block_size = src.block_size();
  Blob dst = Blob::open(to, "w", o);
  if (src.size()) dst.write(src.read());
  dst.close();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: copy_blob SRC DST\n");
    return 2;
  }
  try {
    if (store_kind(argv[1]) == StoreKind::kTensorDB)
      copy_db(argv[1], argv[2]);
    else
      copy_blob(argv[1], argv[2]);
  } catch (const Error& e) {
    std::fprintf(stderr, "copy_blob: %s\n", e.what());
    return 3;
  }
  return 0;
}
