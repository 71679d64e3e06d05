// Building ragged datasets exactly as picomap does (FORMATS.md 2.6), with
// stricter validation and a publish that survives a crash.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "posix_file.h"
#include "tensorblob/error.h"
#include "tensorblob/ragged.h"

namespace tensorblob {

namespace {

std::string parent_dir(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

void write_synced(const std::string& path, std::string_view content) {
  ScopedFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd) throw_errno("create", path);
  pwrite_all(fd.get(), content.data(), content.size(), 0, path);
  if (::fsync(fd.get()) != 0) throw_errno("fsync", path);
}

void fsync_dir(const std::string& dir) {
  ScopedFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d || ::fsync(d.get()) != 0) throw_errno("fsync", dir);
}

}  // namespace

RaggedBuilder::RaggedBuilder(const std::string& base) : paths_(ragged_paths_for_base(base)) {
  if (paths_.base.empty()) throw Error(Errc::kInvalidArgument, "empty dataset base path");
  std::string dir = parent_dir(paths_.base);
  if (dir != "." && dir != "/") make_directories(dir);
  recover_ragged_publish(paths_);  // never build over a half-published dataset
  std::string tmp = paths_.dat + ".tmp";
  fd_ = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd_ < 0) throw_errno("create", tmp);
  hasher_ = std::make_unique<ContentHasher>();
}

RaggedBuilder::~RaggedBuilder() {
  if (fd_ >= 0) ::close(fd_);
  if (!staged_ && !committed_)
    for (const std::string* p : {&paths_.dat, &paths_.starts, &paths_.json, &paths_.hashes})
      ::unlink((*p + ".tmp").c_str());
}

void RaggedBuilder::add(std::string_view typestr, const Shape& shape, const void* data, size_t size,
                        const std::string& source) {
  if (staged_) throw Error(Errc::kInvalidArgument, paths_.base + ": the build was already committed");
  NumpyDType d = numpy_dtype_from_typestr(typestr, source);
  if (shape.empty())
    throw FormatError(source + ": a 0-d array has no rows; ragged items need at least one dimension");
  for (int64_t dim : shape)
    if (dim == 0)
      throw FormatError(source + ": item of shape " + shape_to_string(shape) +
                        " has no elements; picomap cannot store empty items");
  const Shape trail(shape.begin() + 1, shape.end());
  const int64_t want = checked_mul(shape_elements(shape), static_cast<int64_t>(d.itemsize), "item size");
  if (static_cast<uint64_t>(want) != size)
    throw FormatError(source + ": " + std::to_string(size) + " bytes for an item of shape " + shape_to_string(shape) +
                      " and dtype " + d.typestr + " (needs " + std::to_string(want) + ")");
  if (!dtype_) {
    dtype_ = d;
    trail_ = trail;
  } else if (d.typestr != dtype_->typestr) {
    throw FormatError(source + ": dtype " + d.typestr + " differs from the first item's " + dtype_->typestr);
  } else if (trail != *trail_) {
    // picomap lets some of these through after 1-D items and then writes a
    // dataset its own verify rejects (FORMATS.md 2.6); we refuse them all.
    throw FormatError(source + ": trailing shape " + shape_to_string(trail) + " differs from the first item's " +
                      shape_to_string(*trail_));
  }
  constexpr size_t kChunk = 8 << 20;
  if (pending_.size() + size > kChunk) flush_pending();
  if (size >= kChunk) {
    pwrite_all(fd_, data, size, static_cast<off_t>(bytes_), paths_.dat + ".tmp");
    bytes_ += size;
  } else {
    const char* p = static_cast<const char*>(data);
    pending_.insert(pending_.end(), p, p + size);
  }
  hasher_->add_item(d.typestr, shape, data, size);
  digests_.push_back(item_digest(data, size));
  starts_.push_back(starts_.back() + static_cast<uint64_t>(shape[0]));
}

void RaggedBuilder::flush_pending() {
  pwrite_all(fd_, pending_.data(), pending_.size(), static_cast<off_t>(bytes_), paths_.dat + ".tmp");
  bytes_ += pending_.size();
  pending_.clear();
}

void RaggedBuilder::stage() {
  if (staged_) return;
  flush_pending();
  if (::fsync(fd_) != 0) throw_errno("fsync", paths_.dat + ".tmp");
  ::close(fd_);
  fd_ = -1;
  RaggedMeta m;
  m.trail = trail_;
  m.hash = hasher_->finish();
  m.creation_time = picomap_creation_time(std::time(nullptr));
  m.dtype_name = dtype_ ? dtype_->name : "None";
  m.count = count();
  m.total_rows = static_cast<int64_t>(starts_.back());
  write_synced(paths_.json + ".tmp", format_ragged_json(m));
  write_synced(paths_.starts + ".tmp", format_starts_npy(starts_));
  write_synced(paths_.hashes + ".tmp", ItemHashes::encode(digest_from_hex(m.hash), digests_));
  // From here on the new dataset is complete on disk: record the intent so a
  // crash during the renames is rolled forward, never left as a mix.
  write_synced(paths_.publish, "renaming .hashes.npy.tmp .dat.tmp .starts.npy.tmp .json.tmp into place\n");
  fsync_dir(parent_dir(paths_.base));
  staged_ = true;
}

void RaggedBuilder::commit() {
  stage();
  recover_ragged_publish(paths_);  // the renames, in picomap's order (data, starts, JSON)
  committed_ = true;
}

}  // namespace tensorblob
