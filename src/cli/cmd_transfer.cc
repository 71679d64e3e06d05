// tblob push and pull: a store between a local directory and S3.
#include <cstdio>

#include "commands.h"
#include "output.h"
#include "progress.h"
#include "tensorblob/s3.h"

namespace tblob {

namespace {

tensorblob::TransferOptions transfer_options(const ParsedArgs& args, Progress& progress) {
  tensorblob::TransferOptions o;
  if (auto p = args.get("--parallel")) {
    const int64_t n = parse_int(*p, "--parallel");
    if (n < 1 || n > 256) throw UsageError("--parallel must be from 1 to 256, got " + *p);
    o.parallel = static_cast<int>(n);
  }
  o.delete_unlisted = args.has("--delete");
  uint64_t shown = 0;
  o.progress = [&progress, shown](uint64_t done, uint64_t total, size_t, size_t) mutable {
    progress.set_total(total);
    if (done > shown) progress.advance(done - shown);
    shown = done;
  };
  return o;
}

void report(const char* verb, const tensorblob::TransferResult& r) {
  std::string line = std::string(verb) + " " + std::to_string(r.files_sent) + " files (" +
                     std::to_string(r.bytes_sent) + " bytes), " + std::to_string(r.files_skipped) +
                     " already there";
  if (r.files_deleted) line += ", " + std::to_string(r.files_deleted) + " unlisted blocks deleted";
  write_stdout(line + "\n");
}

}  // namespace

int cmd_push(const ParsedArgs& args) {
  const auto& pos = expect_positional(args, 2, "push");
  if (!tensorblob::is_s3_url(pos[1])) throw UsageError("the destination must be an s3:// URL, got " + pos[1]);
  Progress progress("push", 0);
  const auto r = tensorblob::push_store(pos[0], pos[1], {}, transfer_options(args, progress));
  report("sent", r);
  return kExitOk;
}

int cmd_pull(const ParsedArgs& args) {
  const auto& pos = expect_positional(args, 2, "pull");
  if (!tensorblob::is_s3_url(pos[0])) throw UsageError("the source must be an s3:// URL, got " + pos[0]);
  if (args.has("--delete")) throw UsageError("--delete is for push");
  Progress progress("pull", 0);
  const auto r = tensorblob::pull_store(pos[0], pos[1], {}, transfer_options(args, progress));
  report("fetched", r);
  return kExitOk;
}

}  // namespace tblob
