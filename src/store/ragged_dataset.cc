// Reading and recovering ragged datasets, through the storage of the
// directory that holds their files.
#include "ragged_dataset.h"

#include <cerrno>
#include <cstring>

#include "tensorblob/error.h"
#include "tensorblob/hash.h"
#include "tensorblob/ragged.h"
#include "tensorblob/store.h"

namespace tensorblob {

namespace {

[[noreturn]] void data_shrank(const std::string& path) {
  throw Error(Errc::kIo, path + ": data file shrank while it was read (truncated by another process?)", EIO);
}

}  // namespace

RaggedLocation locate_ragged(const std::string& given, const S3Options& s3) {
  RaggedPaths full = ragged_paths(given);
  auto [dir, base_name] = split_path(full.base);
  RaggedLocation loc;
  loc.storage = open_storage(dir, s3);
  loc.names = ragged_paths_for_base(base_name);
  return loc;
}

RaggedDataset::RaggedDataset(const RaggedLocation& loc, const std::string& given) : loc_(loc) {
  const Storage& st = *loc_.storage;
  const RaggedPaths& n = loc_.names;
  recover_ragged_publish(*loc_.storage, n);
  if (!st.stat(n.json) && !st.stat(n.dat))
    throw Error(Errc::kNotFound,
                given + ": no such blob or ragged dataset (looked for " + st.path_of(n.json) + ")", ENOENT);
  json_info_ = st.stat(n.json);
  meta_ = parse_ragged_json(st.read_small(n.json), st.path_of(n.json));
  source_ = st.path_of(n.base);
  if (json_info_) mtime_ns_ = json_info_->mtime_ns;

  if (meta_.count > 0) {
    dtype_ = numpy_dtype_from_name(meta_.dtype_name, st.path_of(n.json));
    trail_ = *meta_.trail;
    row_bytes_ = checked_mul(static_cast<int64_t>(dtype_.itemsize), shape_elements(trail_), "row size");
    if (row_bytes_ == 0)
      throw FormatError(st.path_of(n.json) + ": rows of trailing shape " + shape_to_string(trail_) + " hold no bytes");
  } else if (meta_.dtype_name != "None") {
    throw FormatError(st.path_of(n.json) + ": an empty dataset must have dtype \"None\", got \"" + meta_.dtype_name +
                      "\"");
  }

  // The row offsets are copied once (8 bytes an item): what is served can
  // then never change under a mount, whatever happens to the file.
  {
    std::unique_ptr<ReadableFile> starts = st.open(n.starts, Access::kPread);
    const uint64_t size = starts->size();
    std::string head(static_cast<size_t>(std::min<uint64_t>(size, 1 << 20)), '\0');
    starts->read(0, head.size(), head.data());
    StartsLayout layout = parse_starts_header(head, size, starts->path());
    if (layout.entries != meta_.count + 1)
      throw FormatError(starts->path() + ": has " + std::to_string(layout.entries) + " entries but " +
                        st.path_of(n.json) + " says count " + std::to_string(meta_.count) + " (needs count + 1)");
    starts_.resize(static_cast<size_t>(layout.entries));
    starts->read(layout.data_offset, starts_.size() * 8, starts_.data());
    starts_info_ = starts->info();
  }
  check_starts();

  dat_ = st.open(n.dat, Access::kMapped);
  dat_info_ = dat_->info();
  const uint64_t want = static_cast<uint64_t>(checked_mul(meta_.total_rows, row_bytes_, "data size"));
  if (dat_->size() != want)
    throw FormatError(dat_->path() + ": is " + std::to_string(dat_->size()) + " bytes but " +
                      std::to_string(meta_.total_rows) + " rows of " + std::to_string(row_bytes_) + " bytes need " +
                      std::to_string(want));

  try {
    auto hashes = ItemHashes::open(st, n.hashes);
    if (!hashes) {
      hashes_status_ = "none (tblob verify --update records them)";
    } else if (meta_.count > 0 && hashes->key() == digest_from_hex(meta_.hash) && hashes->count() == meta_.count) {
      hashes_status_ = "per-item xxh3-128 in " + st.path_of(n.hashes);
      hashes_ = std::move(hashes);
    } else {
      // Written for other contents (e.g. picomap rebuilt the dataset).
      hashes_status_ = "stale: " + st.path_of(n.hashes) + " belongs to other contents (tblob verify --update)";
    }
  } catch (const Error& e) {
    hashes_status_ = std::string("damaged: ") + e.what() + " (tblob verify --update rewrites it)";
  }
}

void RaggedDataset::check_starts() const {
  const std::string p = loc_.storage->path_of(loc_.names.starts);
  if (start(0) != 0) throw FormatError(p + ": first entry is " + std::to_string(start(0)) + ", not 0");
  for (int64_t i = 0; i < meta_.count; ++i)
    if (start(i + 1) <= start(i))
      throw FormatError(p + ": entries " + std::to_string(i) + " and " + std::to_string(i + 1) + " (" +
                        std::to_string(start(i)) + ", " + std::to_string(start(i + 1)) +
                        ") do not increase: item " + std::to_string(i) + " would have no rows");
  if (start(meta_.count) != static_cast<uint64_t>(meta_.total_rows))
    throw FormatError(p + ": last entry " + std::to_string(start(meta_.count)) + " disagrees with " +
                      loc_.storage->path_of(loc_.names.json) + " total_rows " + std::to_string(meta_.total_rows));
}

Shape RaggedDataset::range_shape(int64_t first, int64_t last) const {
  Shape s = trail_;
  s.insert(s.begin(), static_cast<int64_t>(start(last) - start(first)));
  return s;
}

ItemView RaggedDataset::item_view(int64_t i) const {
  if (i < 0 || i >= meta_.count)
    throw Error(Errc::kOutOfRange, source_ + ": item " + std::to_string(i) + " out of range for " +
                                       std::to_string(meta_.count) + " items");
  const uint64_t a = item_offset(i), b = item_offset(i + 1);
  return dat_->view(a, static_cast<size_t>(b - a));
}

int64_t RaggedDataset::item_at(uint64_t offset) const {
  // The last item whose start row is at or before the offset's row.
  const uint64_t row = offset / static_cast<uint64_t>(row_bytes_);
  int64_t lo = 0, hi = meta_.count - 1;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo + 1) / 2;
    if (start(mid) <= row) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

void RaggedDataset::read(uint64_t offset, size_t size, std::byte* dst) const {
  if (offset > dat_->size() || size > dat_->size() - offset)
    throw Error(Errc::kOutOfRange, dat_->path() + ": read past the end");
  try {
    dat_->read(offset, size, dst);
  } catch (const Error& e) {
    if (e.code() == Errc::kIo && e.sys_errno() == ENODATA) data_shrank(dat_->path());
    throw;
  }
}

std::string RaggedDataset::version() const {
  return meta_.hash + ":" + std::to_string(dat_info_.inode) + ":" + std::to_string(dat_info_.mtime_ns) + ":" +
         std::to_string(starts_info_.inode) + ":" + (json_info_ ? std::to_string(json_info_->inode) : "");
}

DatasetFacts RaggedDataset::facts() const {
  DatasetFacts f;
  f.format = "picomap (ragged)";
  f.source = source_;
  f.dtype_name = meta_.dtype_name;
  f.typestr = meta_.count ? dtype_.typestr : "";
  f.ragged = true;
  f.shape = trail_;
  f.row_bytes = row_bytes_;
  f.count = meta_.count;
  f.total_rows = meta_.total_rows;
  f.total_bytes = item_offset(meta_.count);
  f.content_hash = meta_.hash;
  f.item_hashes = hashes_status_;
  return f;
}

std::shared_ptr<const RaggedDataset> open_ragged(const std::string& given) {
  return std::make_shared<const RaggedDataset>(locate_ragged(given), given);
}

std::shared_ptr<const Dataset> open_ragged_dataset(const std::string& path) { return open_ragged(path); }

void recover_ragged_publish(Storage& st, const RaggedPaths& n) {
  if (!st.stat(n.publish)) return;
  // Every temporary named here was complete and synced before the intent was
  // written, so finishing the renames yields exactly the new dataset.
  for (const std::string* final_name : {&n.hashes, &n.dat, &n.starts, &n.json}) {
    const std::string tmp = *final_name + ".tmp";
    if (st.is_file(tmp)) {
      try {
        st.rename(tmp, *final_name);
      } catch (const Error& e) {
        if (e.code() != Errc::kNotFound) throw;  // another process finished it first
      }
    }
  }
  st.sync();
  st.remove(n.publish);
  st.sync();
}

void recover_ragged_publish(const RaggedPaths& paths) {
  auto [dir, base_name] = split_path(paths.base);
  auto st = open_posix_storage(dir);
  recover_ragged_publish(*st, ragged_paths_for_base(base_name));
}

}  // namespace tensorblob
