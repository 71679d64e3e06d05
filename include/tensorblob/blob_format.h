// The two small JSON files of a tensorblob directory (src/store/FORMATS.md 3.3, 3.4).
//
// Pure functions: text in, struct out (or struct in, exact bytes out). Parsers
// throw FormatError whose message starts with the `path` they were given, so
// the caller never has to add context. Writers produce the bytes Python
// tensorblob writes, so a directory written here opens there and vice versa.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tensorblob/dtype.h"

namespace tensorblob {

inline constexpr int64_t kDefaultBlockSize = 8192;

// How `__notes__.class_name` is spelled in a .conf we write (src/store/FORMATS.md 3.3).
enum class ConfFlavor {
  kShort,      // "TensorBlob": just-config-mixin 0.1.1rc2, verified (default)
  kQualified,  // "tensorblob._blob.TensorBlob": just-config-mixin 0.2.0a1
};

struct BlobConf {
  std::string dtype_name;  // as stored; may be an alias such as "float"
  DType dtype = DType::kFloat32;
  Shape shape;
  int64_t block_size = kDefaultBlockSize;
  int64_t item_bytes = 0;   // itemsize × elements, derived and checked
  int64_t block_bytes = 0;  // block_size × item_bytes, derived and checked
};

// Validates dtype, shape and block size the way a reader must (known dtype,
// dimensions ≥ 1, B ≥ 1, no overflow) and fills the derived sizes. `where`
// prefixes error messages. Throws FormatError.
BlobConf make_blob_conf(std::string_view where, std::string dtype_name, Shape shape,
                        int64_t block_size);

// Parses a TensorBlob .conf. Accepts any key order and whitespace, dtype
// aliases, the short and qualified class_name, and the pre-0.1.1rc2 layout.
BlobConf parse_blob_conf(std::string_view text, std::string_view path);

// The exact .conf bytes Python writes: pretty JSON, sorted keys, final newline.
std::string format_blob_conf(const BlobConf& conf, ConfFlavor flavor = ConfFlavor::kShort);

struct BlobStatus {
  int64_t len = 0;                  // committed number of tensors
  std::vector<std::string> blocks;  // block file names, in tensor order ("bds")
};

// Parses a .stat. A missing key takes its default, as in Python; an extra key,
// a negative length, or a block name that is not a plain file name is an error.
BlobStatus parse_blob_status(std::string_view text, std::string_view path);

// The exact compact .stat bytes: {"len":N,"bds":[...]} with no newline.
std::string format_blob_status(const BlobStatus& status);

// True when `name` is a plain file name inside the directory: non-empty, at
// most 255 bytes, no '/', no NUL, not "." or "..", not one of our own files.
bool is_valid_block_name(std::string_view name);

// A fresh random UUIDv4 string, the kind of name Python gives a new block
// (ours carry a tag in their last digits: see src/store/filenames.h).
std::string new_block_name();

}  // namespace tensorblob
