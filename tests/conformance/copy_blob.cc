// copy_blob SRC DST: reads every tensor of blob SRC and writes them, in order,
// to a new blob DST with the same dtype, shape and block size. The conformance
// tests run Python's tensorblob_ref.py compare on SRC and DST.
#include <cstdio>

#include "tensorblob/blob.h"
#include "tensorblob/error.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: copy_blob SRC DST\n");
    return 2;
  }
  try {
    tensorblob::Blob src = tensorblob::Blob::open(argv[1], "r");
    tensorblob::OpenOptions o;
    o.dtype = std::string(tensorblob::dtype_info(src.dtype()).name);
    o.shape = src.shape();
    o.block_size = src.block_size();
    tensorblob::Blob dst = tensorblob::Blob::open(argv[2], "w", o);
    if (src.size()) dst.write(src.read());
    dst.close();
  } catch (const tensorblob::Error& e) {
    std::fprintf(stderr, "copy_blob: %s\n", e.what());
    return 3;
  }
  return 0;
}
