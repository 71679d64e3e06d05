#include <algorithm>
#include <optional>

#include "commands.h"
#include "progress.h"
#include "tensorblob/error.h"
#include "tensorblob/npy.h"
#include "tensorblob/storage.h"
#include "tensorblob/store.h"
#include "tensorblob/tensordb.h"

namespace tblob {

namespace {

// What export reads: PATH itself, or the field --field names of the
// TensorDB at PATH, with the database's committed row count.
struct DBField {
  std::string path;
  std::optional<int64_t> rows;
};

DBField db_field(const std::string& path, const std::optional<std::string>& field) {
  const bool is_db = !tensorblob::is_s3_url(path) && tensorblob::store_kind(path) == tensorblob::StoreKind::kTensorDB;
  if (!is_db) {
    if (field) throw UsageError(path + " is not a TensorDB; --field is for TensorDB directories");
    return {path, std::nullopt};
  }
  tensorblob::TensorDB db = tensorblob::TensorDB::open(path, "r");
  std::string names;
  for (const auto& f : db.schema()) names += (names.empty() ? "" : ", ") + f.name;
  if (!field) throw UsageError(path + " is a TensorDB: choose a field with --field NAME (fields: " + names + ")");
  for (const auto& f : db.schema())
    if (f.name == *field) return {path + "/" + f.name, db.size()};
  throw UsageError(path + ": no field '" + *field + "' (fields: " + names + ")");
}

}  // namespace

int cmd_export(const ParsedArgs& args) {
  const auto& pos = expect_positional(args, 2, "export");
  const DBField db = db_field(pos[0], args.get("--field"));
  auto store = tensorblob::open_store(db.path);
  for (int attempt = 0;; ++attempt) {
    auto ds = store->snapshot();
    if (ds->npy_descr().empty())
      throw tensorblob::Error(tensorblob::Errc::kInvalidArgument,
                              db.path + ": numpy has no dtype " + ds->dtype_name() + "; use tblob cat for raw bytes");
    // A field's own count may run past the database's committed rows.
    const int64_t count = db.rows ? std::min(*db.rows, ds->count()) : ds->count();
    auto [a, b] = args.get("--range") ? parse_range(*args.get("--range"), count) : std::pair<int64_t, int64_t>{0, count};
    // A regular file (or a new path) is replaced whole at the end; a device,
    // FIFO or /dev/stdout is written through (storage.h).
    std::unique_ptr<tensorblob::OutputFile> out = tensorblob::open_output_file(pos[1]);
    uint64_t written = 0;
    try {
      std::string header = tensorblob::npy_header(ds->npy_descr(), ds->range_shape(a, b));
      out->write(header.data(), header.size());
      written += header.size();
      const uint64_t begin = ds->item_offset(a), end = ds->item_offset(b);
      Progress progress("export", end - begin);
      std::vector<std::byte> buf(8 << 20);
      for (uint64_t off = begin; off < end;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - off));
        ds->read(off, n, buf.data());
        out->write(buf.data(), n);
        written += n;
        progress.advance(n);
        off += n;
      }
      out->commit();
      return kExitOk;
    } catch (const tensorblob::Error& e) {
      // A block a later commit replaced: start over on the new commit, unless
      // part of this one already went down a stream.
      if (e.code() != tensorblob::Errc::kNotFound || attempt >= 3 || (out->streaming() && written > 0)) throw;
      if (!store->refresh()) throw;
    }
  }
}

}  // namespace tblob
