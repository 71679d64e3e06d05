// A Storage over the objects PREFIX/NAME of one bucket (storage.h): blobs
// and ragged datasets kept on object storage are read exactly as local ones.
// Read-only: every write is refused with EROFS (stores change by push).
//
// Small files (.conf, .stat, a ragged .json) are fetched whole and kept with
// their ETag; asking again is a conditional GET (304 when unchanged), and
// answers younger than kFreshness are reused, so one reload of a store costs
// one request per small file. Block files are read in parts through the
// process's PartCache, with read-ahead for sequential readers; each open
// file reads the object version (ETag) it was opened at and, if the object
// is replaced, moves to the new version (as a local file rewritten in place).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "part_cache.h"
#include "s3_client.h"
#include "tensorblob/s3.h"
#include "tensorblob/storage.h"

namespace tensorblob::s3 {

// What the storages of one process with the same settings share.
struct S3Context {
  S3Options options;
  std::shared_ptr<S3Client> client;
  std::shared_ptr<PartCache> parts;
  std::string endpoint_id;  // endpoint base, for identities
};
// The shared context for these options, made on first use.
std::shared_ptr<S3Context> context_for(const S3Options& options);

inline constexpr std::chrono::milliseconds kFreshness{500};

std::shared_ptr<Storage> make_s3_storage(std::shared_ptr<S3Context> ctx, const S3Url& url);

// Whether `name` is one of the small files fetched whole and revalidated.
bool is_small_file_name(std::string_view name);

}  // namespace tensorblob::s3
