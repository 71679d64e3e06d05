// Building ragged datasets exactly as picomap does (src/store/FORMATS.md 2.6), with
// stricter validation and a publish that survives a crash.
#include <cerrno>

#include "posix_file.h"
#include "ragged_dataset.h"
#include "tensorblob/error.h"
#include "tensorblob/ragged.h"

namespace tensorblob {

RaggedBuilder::RaggedBuilder(const std::string& base) : paths_(ragged_paths_for_base(base)) {
  if (paths_.base.empty()) throw Error(Errc::kInvalidArgument, "empty dataset base path");
  auto [dir, name] = split_path(paths_.base);
  if (dir != "." && dir != "/") make_directories(dir);
  storage_ = open_posix_storage(dir);
  names_ = ragged_paths_for_base(name);
  recover_ragged_publish(*storage_, names_);  // never build over a half-published dataset
  for (const std::string* n : {&names_.dat, &names_.starts, &names_.json, &names_.hashes}) {
    auto info = storage_->stat(*n);
    if (info && !info->regular())
      throw Error(Errc::kInvalidArgument,
                  storage_->path_of(*n) + ": is " + describe(info->kind) + "; refusing to replace it with a dataset file");
  }
  const std::string tmp = names_.dat + ".tmp";
  storage_->remove(tmp);
  data_ = storage_->create(tmp);
  hasher_ = std::make_unique<ContentHasher>();
}

RaggedBuilder::~RaggedBuilder() {
  data_.reset();
  if (!staged_ && !committed_) {
    for (const std::string* n : {&names_.dat, &names_.starts, &names_.json, &names_.hashes}) {
      try {
        storage_->remove(*n + ".tmp");
      } catch (...) {
      }
    }
  }
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
    // dataset its own verify rejects (src/store/FORMATS.md 2.6); we refuse them all.
    throw FormatError(source + ": trailing shape " + shape_to_string(trail) + " differs from the first item's " +
                      shape_to_string(*trail_));
  }
  constexpr size_t kChunk = 8 << 20;
  if (pending_.size() + size > kChunk) flush_pending();
  if (size >= kChunk) {
    data_->write(bytes_, data, size);
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
  data_->write(bytes_, pending_.data(), pending_.size());
  bytes_ += pending_.size();
  pending_.clear();
}

void RaggedBuilder::write_synced(const std::string& name, std::string_view content) {
  storage_->remove(name);
  std::unique_ptr<WritableFile> f = storage_->create(name);
  f->write(0, content.data(), content.size());
  f->sync();
}

void RaggedBuilder::stage() {
  if (staged_) return;
  flush_pending();
  data_->sync();
  data_.reset();
  RaggedMeta m;
  m.trail = trail_;
  m.hash = hasher_->finish();
  m.creation_time = picomap_creation_time(std::time(nullptr));
  m.dtype_name = dtype_ ? dtype_->name : "None";
  m.count = count();
  m.total_rows = static_cast<int64_t>(starts_.back());
  write_synced(names_.json + ".tmp", format_ragged_json(m));
  write_synced(names_.starts + ".tmp", format_starts_npy(starts_));
  write_synced(names_.hashes + ".tmp", ItemHashes::encode(digest_from_hex(m.hash), digests_));
  // From here on the new dataset is complete on disk: record the intent so a
  // crash during the renames is rolled forward, never left as a mix.
  write_synced(names_.publish, "renaming .hashes.npy.tmp .dat.tmp .starts.npy.tmp .json.tmp into place\n");
  storage_->sync();
  staged_ = true;
}

void RaggedBuilder::commit() {
  stage();
  recover_ragged_publish(*storage_, names_);  // the renames, in picomap's order (data, starts, JSON)
  committed_ = true;
}

}  // namespace tensorblob
