// The pieces of tblob push and pull that need no server: which files make
// a store and in which order they are published, and the ETag S3 gives a
// file, so a transfer can skip what is already there.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tensorblob/storage.h"

namespace tensorblob::s3 {

// The files of one commit of a store, in the order they must reach the
// other side: data first (any order among them), then the small files that
// name them, the one that completes a commit last.
struct StoreFiles {
  std::vector<std::string> data;   // block files and sidecars, or the ragged .dat / .starts.npy / .hashes.npy
  std::vector<std::string> final;  // .conf then .stat, or the ragged .json
  std::string stat_text;           // a blob's .stat as read (its blocks are `data`)
  // Bytes of each data file that hold committed rows (a blob's last block
  // less its unfilled tail); absent: the whole file.
  std::map<std::string, uint64_t> committed_bytes;
  std::string base;                // a ragged dataset's base name
  bool blob = false;
};
// A blob's files from its .conf and .stat text; `hashes`: whether a
// .hashes.npy sidecar is there to go with it.
StoreFiles blob_files(const std::string& conf_text, const std::string& stat_text, const std::string& stat_path,
                      bool hashes);
// A ragged dataset's files for `base` (its name in the directory); those of
// `present` that exist.
StoreFiles ragged_files(const std::string& base, const std::vector<std::string>& present);

// Objects at least this large are uploaded in parts of kUploadPartBytes.
inline constexpr uint64_t kMultipartThreshold = uint64_t{64} << 20;
inline constexpr uint64_t kUploadPartBytes = uint64_t{16} << 20;

// The ETag S3 gives the bytes of `file` uploaded whole (hex MD5) or in
// parts of `part_bytes` (MD5 of the parts' MD5s, "-N").
std::string etag_of(const ReadableFile& file, uint64_t part_bytes, bool multipart);
// Whether `file` is what an object with `etag` holds, for ETags made by a
// single PUT, by our uploads, or by the usual tools' multipart sizes.
bool same_content(const ReadableFile& file, const std::string& etag);

}  // namespace tensorblob::s3
