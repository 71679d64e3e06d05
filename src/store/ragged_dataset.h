// A ragged dataset read through the storage of the directory holding its
// files: the Dataset of a picomap trio (ragged.h), immutable once opened.
// Safe for concurrent use.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tensorblob/dataset.h"
#include "tensorblob/item_hashes.h"
#include "tensorblob/npy.h"
#include "tensorblob/ragged.h"
#include "tensorblob/s3.h"
#include "tensorblob/storage.h"

namespace tensorblob {

// Where a ragged dataset's files are: the directory, and their names in it.
struct RaggedLocation {
  std::shared_ptr<Storage> storage;
  RaggedPaths names;  // file names relative to storage
};
// The dataset `given` names ("x", "x.dat", "x.json", "x.starts.npy"),
// local or at an s3:// URL (reached with `s3`).
RaggedLocation locate_ragged(const std::string& given, const S3Options& s3 = {});

class RaggedDataset final : public Dataset {
 public:
  // Opens the dataset (finishing an interrupted publish first). `given` is
  // what the caller named it, for the not-found message.
  RaggedDataset(const RaggedLocation& location, const std::string& given);

  const std::string& source() const override { return source_; }
  int64_t count() const override { return meta_.count; }
  std::string dtype_name() const override { return meta_.dtype_name; }
  std::string npy_descr() const override { return meta_.count ? dtype_.typestr : ""; }
  Shape item_shape(int64_t i) const override { return range_shape(i, i + 1); }
  Shape range_shape(int64_t first, int64_t last) const override;
  uint64_t item_offset(int64_t i) const override { return start(i) * static_cast<uint64_t>(row_bytes_); }
  int64_t item_at(uint64_t offset) const override;
  ItemView item_view(int64_t i) const override;
  void read(uint64_t offset, size_t size, std::byte* dst) const override;
  const ItemHashes* item_hashes() const override { return hashes_.get(); }
  int64_t mtime_ns() const override { return mtime_ns_; }
  std::string version() const override;
  DatasetFacts facts() const override;
  // Its one file read after opening (the data) is held from the start.
  size_t hold_files() const override { return 1; }

  const RaggedLocation& location() const { return loc_; }
  const RaggedMeta& meta() const { return meta_; }
  uint64_t start(int64_t i) const { return starts_[static_cast<size_t>(i)]; }
  const ReadableFile& data() const { return *dat_; }
  // What the three files were when opened, to tell whether they changed.
  const FileInfo& data_info() const { return dat_info_; }
  const FileInfo& starts_info() const { return starts_info_; }
  const std::optional<FileInfo>& json_info() const { return json_info_; }

 private:
  // What picomap does not check (src/store/FORMATS.md 2.9): starts from 0, never
  // decreasing, every item at least one row, ending at total_rows.
  void check_starts() const;

  RaggedLocation loc_;
  RaggedMeta meta_;
  std::string source_;
  NumpyDType dtype_;
  Shape trail_;
  int64_t row_bytes_ = 0;
  std::unique_ptr<ReadableFile> dat_;
  std::vector<uint64_t> starts_;  // little-endian on disk, as on every supported machine
  std::unique_ptr<ItemHashes> hashes_;
  std::string hashes_status_;
  int64_t mtime_ns_ = 0;
  FileInfo dat_info_, starts_info_;
  std::optional<FileInfo> json_info_;
};

std::shared_ptr<const RaggedDataset> open_ragged(const std::string& given);

// Finishes an interrupted publish of the dataset whose files are `names` in `st`.
void recover_ragged_publish(Storage& st, const RaggedPaths& names);

}  // namespace tensorblob
