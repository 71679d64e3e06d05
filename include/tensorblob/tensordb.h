// A TensorDB is the tensorblob library's table: several row-aligned fields,
// each a complete Blob in a subdirectory named after the field, and a
// committed row count of its own (src/store/FORMATS.md 3.8). Python's
// tensorblob._db.TensorDB opens what this writes and vice versa.
//
// Rows: the committed row count is min(the DB's .stat, every field's
// count), as Python computes it, since a crash between the fields' commits
// and the DB's leaves fields longer than the DB. Read-only opens report that
// minimum and leave the files alone; writable opens also cut longer fields
// to it and rewrite the DB's .stat. Reads never return a row past it.
//
// Durability: append() writes every field at once; flush(), close() and
// truncate() commit each field (block data, then its .stat) and only then
// the DB's .stat (atomically replaced), so a crash never leaves a committed
// row that some field lacks.
//
// Ownership: a TensorDB owns its field Blobs (one writer lock per field in
// writable modes). Values returned by reads are copies the caller owns.
// Thread safety: like Blob: reads are safe from many threads while no
// thread writes; writes, flush and close need external synchronization.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tensorblob/blob.h"
#include "tensorblob/blob_format.h"
#include "tensorblob/tensor.h"

namespace tensorblob {

// One field of a schema.
struct FieldSpec {
  std::string name;
  std::string dtype;  // torch name or alias, as given or stored
  Shape shape;        // per-row shape
  bool operator==(const FieldSpec&) const = default;
};

struct DBConf {
  int64_t block_size = kDefaultBlockSize;
  std::vector<FieldSpec> schema;  // sorted by name, as Python iterates after a reopen
};

// Field names are non-empty, do not start with '.', contain no '/' or NUL
// and fit in a file name (255 bytes).
bool is_valid_field_name(std::string_view name);

// Parses a TensorDB .conf: any key order and whitespace, both class_name
// spellings, dtype aliases. Throws FormatError starting with `path`.
DBConf parse_db_conf(std::string_view text, std::string_view path);
// The exact .conf bytes Python writes (pretty JSON, sorted keys, newline).
std::string format_db_conf(const DBConf& conf, ConfFlavor flavor = ConfFlavor::kShort);
// A DB .stat is exactly {"len":N}; extra keys and negative lengths are errors.
int64_t parse_db_status(std::string_view text, std::string_view path);
std::string format_db_status(int64_t len);

// Named fields of some rows: field name -> tensor.
using Fields = std::map<std::string, Tensor>;

struct DBOptions {
  // Needed only to create a DB (modes w, w+ on a missing one), in the order
  // the field directories are created; an existing DB keeps its stored schema.
  std::vector<FieldSpec> schema;
  int64_t block_size = kDefaultBlockSize;
  ConfFlavor conf_flavor = ConfFlavor::kShort;
};

class TensorDB {
 public:
  // Opens or creates the TensorDB directory `path` in `mode` (Blob's modes).
  // Throws Error: kNotFound (missing DB, or its .stat in r/a modes),
  // kInvalidArgument (bad mode, schema or field name; creating without a
  // schema), kFormat (damaged .conf/.stat, or a field whose dtype, shape or
  // block size disagrees with the schema), kBusy (another writer), kIo.
  static TensorDB open(const std::string& path, std::string_view mode = "r", const DBOptions& options = {});

  TensorDB(TensorDB&&) noexcept;
  TensorDB& operator=(TensorDB&&) noexcept;
  ~TensorDB();  // closes (committing writes), swallowing errors

  const std::string& path() const;
  const DBConf& conf() const;
  const std::vector<FieldSpec>& schema() const { return conf().schema; }
  // Rows, including appends not committed yet.
  int64_t size() const;
  // What open found: one line per field whose count differed from the DB's
  // (empty when all agreed). Python warns with the same facts.
  const std::vector<std::string>& warnings() const;
  // The field's blob; throws Error(kInvalidArgument) for an unknown name.
  // Its own size() may exceed the DB's in read-only mode: read through the
  // DB to stay within committed rows.
  const Blob& field(std::string_view name) const;

  // Appends n rows: `rows` holds exactly the schema's fields, each one row
  // of its shape or a batch (n, *shape) of its dtype, the same n for all.
  // Everything is checked before anything is written. Returns n.
  int64_t append(const Fields& rows);
  // Commits every field, then the DB's row count.
  void flush();
  // Cuts every field to n rows (n <= size()) and commits.
  void truncate(int64_t n);
  void close();  // idempotent

  // Reads; negative indices count from the end. Throws Error(kOutOfRange).
  Fields get(int64_t row) const;
  Fields slice(std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step = 1) const;
  Fields gather(std::span<const int64_t> rows) const;

 private:
  class Impl;
  explicit TensorDB(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tensorblob
