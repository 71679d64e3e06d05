#include "tensorblob/tensordb.h"

#include <sys/stat.h>

#include <algorithm>

#include "filenames.h"
#include "posix_file.h"
#include "tensorblob/error.h"
#include "tensorblob/storage.h"

namespace tensorblob {

class TensorDB::Impl {
 public:
  std::string path;
  OpenMode mode;
  DBConf conf;
  std::shared_ptr<Storage> dir;
  std::map<std::string, Blob, std::less<>> fields;
  int64_t committed = 0;  // rows the DB's .stat says (after open's recovery)
  int64_t len = 0;        // rows including appends not committed
  std::vector<std::string> warnings;
  bool closed = false;

  void check_open() const {
    if (closed) throw Error(Errc::kNotPermitted, path + ": database is closed");
  }
  void check_writable() const {
    check_open();
    if (!mode.writable)
      throw Error(Errc::kNotPermitted, path + ": database is not open for writing (mode '" + mode.text + "')");
  }
  int64_t normalize(int64_t row) const {
    const int64_t j = row < 0 ? row + len : row;
    if (j < 0 || j >= len)
      throw Error(Errc::kOutOfRange, path + ": row " + std::to_string(row) + " out of range for a database of " +
                                         std::to_string(len) + " rows");
    return j;
  }
  void commit() {
    for (auto& [name, blob] : fields) blob.flush();
    if (committed != len || !dir->stat(kStatName)) dir->publish(kStatName, format_db_status(len));
    committed = len;
  }
};

namespace {

void check_schema(const std::string& path, const std::vector<FieldSpec>& schema, int64_t block_size) {
  if (schema.empty()) throw Error(Errc::kInvalidArgument, path + ": a new database needs a schema of at least one field");
  std::vector<std::string> seen;
  for (const auto& f : schema) {
    if (!is_valid_field_name(f.name))
      throw Error(Errc::kInvalidArgument, path + ": field name '" + f.name +
                                              "' is not valid (empty, starting with '.', or holding '/')");
    if (std::find(seen.begin(), seen.end(), f.name) != seen.end())
      throw Error(Errc::kInvalidArgument, path + ": field '" + f.name + "' is named twice");
    seen.push_back(f.name);
    try {
      make_blob_conf(path + "/" + f.name, f.dtype, f.shape, block_size);
    } catch (const FormatError& e) {
      throw Error(Errc::kInvalidArgument, e.what());
    }
  }
}

// Creates the directory the way Python does: .conf, each field in the
// caller's order, then .stat (src/store/FORMATS.md 3.8).
void create_db(const std::string& path, const DBOptions& options) {
  check_schema(path, options.schema, options.block_size);
  make_directories(path);
  auto dir = open_posix_storage(path);
  DBConf conf{options.block_size, options.schema};
  std::sort(conf.schema.begin(), conf.schema.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  dir->publish(kConfName, format_db_conf(conf, options.conf_flavor));
  for (const auto& f : options.schema) {
    OpenOptions o;
    o.dtype = f.dtype;
    o.shape = f.shape;
    o.block_size = options.block_size;
    o.conf_flavor = options.conf_flavor;
    Blob::open(path + "/" + f.name, "w", o).close();
  }
  dir->publish(kStatName, format_db_status(0));
}

}  // namespace

TensorDB TensorDB::open(const std::string& path_in, std::string_view mode_text, const DBOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->mode = parse_open_mode(mode_text);
  std::string path = path_in;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  impl->path = path;
  const OpenMode& mode = impl->mode;

  struct stat st;
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && !S_ISDIR(st.st_mode)) throw Error(Errc::kFormat, path + ": not a TensorDB directory");
  if (!exists && mode.must_exist) throw Error(Errc::kNotFound, path + ": no such database", ENOENT);
  if (!exists || (mode.truncate && open_posix_storage(path)->list().empty())) create_db(path, options);

  impl->dir = open_posix_storage(path);
  if (!impl->dir->stat(kConfName))
    throw Error(Errc::kNotFound, path + "/.conf: missing; not a TensorDB directory", ENOENT);
  impl->conf = parse_db_conf(impl->dir->read_small(kConfName, 1 << 20), path + "/.conf");

  int64_t db_len = 0;
  if (impl->dir->stat(kStatName)) {
    db_len = parse_db_status(impl->dir->read_small(kStatName, 1 << 20), path + "/.stat");
  } else if (!mode.truncate) {
    throw Error(Errc::kNotFound, "Status file missing for database at " + path, ENOENT);
  }

  // Fields in writable modes are opened r+ so nothing is cut before the
  // counts are known; 'w' empties each one as Python's does.
  const char* field_mode = !mode.writable ? "r" : mode.truncate ? "w+" : "r+";
  for (const auto& f : impl->conf.schema) {
    const std::string fpath = path + "/" + f.name;
    Blob b = Blob::open(fpath, field_mode);
    if (parse_dtype(f.dtype) != b.dtype() || f.shape != b.shape() || b.block_size() != impl->conf.block_size)
      throw FormatError(fpath + ": field config (" + std::string(dtype_info(b.dtype()).name) + " " +
                        shape_to_string(b.shape()) + ", block_size " + std::to_string(b.block_size()) +
                        ") disagrees with the database schema (" + f.dtype + " " + shape_to_string(f.shape) +
                        ", block_size " + std::to_string(impl->conf.block_size) + ")");
    impl->fields.emplace(f.name, std::move(b));
  }

  int64_t rows = mode.truncate ? 0 : db_len;
  for (const auto& [name, b] : impl->fields) rows = std::min(rows, b.size());
  for (const auto& [name, b] : impl->fields)
    if (b.size() != db_len && !mode.truncate)
      impl->warnings.push_back(path + "/" + name + ": " + std::to_string(b.size()) + " rows, the database commits " +
                               std::to_string(db_len) + "; using " + std::to_string(rows));
  if (rows != db_len && impl->warnings.empty() && !mode.truncate)
    impl->warnings.push_back(path + "/.stat: " + std::to_string(db_len) + " rows; using " + std::to_string(rows));
  impl->committed = impl->len = rows;

  if (mode.writable) {
    for (auto& [name, b] : impl->fields)
      if (b.size() > rows) b.truncate(rows);
    if (db_len != rows || mode.truncate || !impl->dir->stat(kStatName)) {
      impl->dir->publish(kStatName, format_db_status(rows));
    }
    if (mode.append)
      for (auto& [name, b] : impl->fields) b.seek(0, Whence::kEnd);
  }
  return TensorDB(std::move(impl));
}

TensorDB::TensorDB(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TensorDB::TensorDB(TensorDB&&) noexcept = default;
TensorDB& TensorDB::operator=(TensorDB&&) noexcept = default;
TensorDB::~TensorDB() {
  if (!impl_) return;
  try {
    close();
  } catch (...) {
  }
}

const std::string& TensorDB::path() const { return impl_->path; }
const DBConf& TensorDB::conf() const { return impl_->conf; }
int64_t TensorDB::size() const { return impl_->len; }
const std::vector<std::string>& TensorDB::warnings() const { return impl_->warnings; }

const Blob& TensorDB::field(std::string_view name) const {
  auto it = impl_->fields.find(name);
  if (it == impl_->fields.end())
    throw Error(Errc::kInvalidArgument, impl_->path + ": no field '" + std::string(name) + "' in the database");
  return it->second;
}

int64_t TensorDB::append(const Fields& rows) {
  Impl& m = *impl_;
  m.check_writable();
  std::optional<int64_t> n;
  for (const auto& [name, t] : rows)
    if (!m.fields.count(name))
      throw Error(Errc::kInvalidArgument, m.path + ": no field '" + name + "' in the database");
  for (const auto& [name, blob] : m.fields) {
    auto it = rows.find(name);
    if (it == rows.end()) throw Error(Errc::kInvalidArgument, m.path + ": rows lack field '" + name + "'");
    const Tensor& t = it->second;
    if (t.dtype() != blob.dtype())
      throw Error(Errc::kInvalidArgument, m.path + ": field '" + name + "' holds " +
                                              std::string(dtype_info(blob.dtype()).name) + ", got " +
                                              std::string(dtype_info(t.dtype()).name));
    const auto k = tensors_in_shape(t.shape(), blob.shape());
    if (!k)
      throw Error(Errc::kInvalidArgument, m.path + ": field '" + name + "' rows have shape " +
                                              shape_to_string(blob.shape()) + ", got " + shape_to_string(t.shape()));
    if (n && *k != *n)
      throw Error(Errc::kInvalidArgument, m.path + ": fields disagree on the number of rows (" + std::to_string(*n) +
                                              " and " + std::to_string(*k) + " for '" + name + "')");
    n = *k;
  }
  for (auto& [name, blob] : m.fields) {
    blob.seek(m.len);
    try {
      blob.write(rows.at(name));
    } catch (...) {
      // Rows already written to other fields are cut again, so the fields
      // stay row-aligned; nothing committed is touched.
      for (auto& [other, b] : m.fields) b.resize(m.len);
      throw;
    }
  }
  m.len += *n;
  return *n;
}

void TensorDB::flush() {
  impl_->check_writable();
  impl_->commit();
}

void TensorDB::truncate(int64_t n) {
  Impl& m = *impl_;
  m.check_writable();
  if (n < 0 || n > m.len)
    throw Error(Errc::kOutOfRange, m.path + ": cannot truncate a database of " + std::to_string(m.len) + " rows to " +
                                       std::to_string(n));
  // The DB's count goes down first, so no committed row is ever missing
  // from a field, even after a crash between the steps.
  if (n < m.committed) {
    m.dir->publish(kStatName, format_db_status(n));
    m.committed = n;
  }
  for (auto& [name, blob] : m.fields) blob.truncate(n);
  m.len = n;
  m.commit();
}

void TensorDB::close() {
  Impl& m = *impl_;
  if (m.closed) return;
  if (m.mode.writable) m.commit();
  for (auto& [name, blob] : m.fields) blob.close();
  m.closed = true;
}

Fields TensorDB::get(int64_t row) const {
  impl_->check_open();
  const int64_t i = impl_->normalize(row);
  Fields out;
  for (const auto& [name, blob] : impl_->fields) out.emplace(name, blob.get(i));
  return out;
}

Fields TensorDB::slice(std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step) const {
  impl_->check_open();
  if (step == 0) throw Error(Errc::kInvalidArgument, impl_->path + ": slice step cannot be zero");
  const SliceIndices s = slice_indices(impl_->len, start, stop, step);
  Fields out;
  for (const auto& [name, blob] : impl_->fields) {
    // Bounds are within the DB's rows, so a longer field never shows more.
    if (s.step == 1) {
      out.emplace(name, blob.slice(s.first, s.first + s.count));
    } else {
      std::vector<int64_t> idx(static_cast<size_t>(s.count));
      for (int64_t k = 0; k < s.count; ++k) idx[k] = s.first + k * s.step;
      out.emplace(name, blob.gather(idx));
    }
  }
  return out;
}

Fields TensorDB::gather(std::span<const int64_t> rows) const {
  impl_->check_open();
  std::vector<int64_t> idx(rows.size());
  for (size_t k = 0; k < rows.size(); ++k) idx[k] = impl_->normalize(rows[k]);
  Fields out;
  for (const auto& [name, blob] : impl_->fields) out.emplace(name, blob.gather(idx));
  return out;
}

}  // namespace tensorblob
